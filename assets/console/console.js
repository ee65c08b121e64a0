// coverguard reviewer console: hand-written vanilla JS (ES2020), no build step.
//
// Served under a strict CSP (script-src 'self'; style-src 'self'), so:
//   - no inline scripts / style attributes / <style> elements; dynamic geometry goes
//     through the CSSOM (element.style.left = ...), which the CSP allows;
//   - every piece of data is inserted with textContent / createElement, never innerHTML.
"use strict";

(() => {
  const API = "/v1/review";
  const SVG_NS = "http://www.w3.org/2000/svg";

  const state = {
    user: null, // {username, role, settings: {blur, grayscale, grayscale_reveal}}
    csrf: null, // kept in memory only
    renderSeq: 0, // bumped on every route change; stale async renders bail out
    showBoxes: true, // detection overlay toggle (remembered across item pages)
    imageBust: 0, // cache-busting counter for the image URL, set after saving view settings
  };

  const DECISION_WORDS = { confirm: "confirmed", release: "released", escalate: "escalated" };
  const QUEUE_STATES = ["open", "pending", "claimed", "escalated", "decided"];
  // The filter names states as the rows do: "open" is the API's word for pending or claimed.
  const STATE_LABELS = { open: "pending or claimed", escalated: "escalated (admins)" };
  // Escalated items are admin-only: the API refuses the filter to reviewers.
  const ADMIN_STATES = ["escalated"];
  const QUEUE_VERDICTS = ["any", "block", "review"];
  const QUEUE_FILTERS = ["state", "verdict", "label", "bank", "owner", "from", "to", "reported"];
  const REPORTER_WORDS = { user: "a user", guardian: "a parent or guardian", trusted_flagger: "a trusted flagger", law_enforcement: "law enforcement" };
  const CATEGORY_WORDS = { minor_sexual: "sexual content involving a minor", adult_nudity: "adult nudity", grooming: "grooming or a contact request", other: "other" };

  // ---------------------------------------------------------------- DOM helpers

  function append(el, kids) {
    for (const kid of kids) {
      if (kid == null || kid === false) continue;
      if (Array.isArray(kid)) append(el, kid);
      else if (kid instanceof Node) el.appendChild(kid);
      else el.appendChild(document.createTextNode(String(kid)));
    }
    return el;
  }

  function setAttrs(el, attrs) {
    if (!attrs) return el;
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k === "style") throw new Error("inline style attributes are blocked by the CSP");
      if (k === "class") el.setAttribute("class", Array.isArray(v) ? v.filter(Boolean).join(" ") : v);
      else if (k === "text") el.textContent = String(v);
      else if (k === "dataset") for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = String(dv);
      else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
      else if (v === true) el.setAttribute(k, "");
      else el.setAttribute(k, String(v));
    }
    return el;
  }

  /** h("tag#id.cls", {attrs}, ...children) */
  function h(spec, attrs, ...kids) {
    const { tag, id, classes } = parseSpec(spec);
    const el = document.createElement(tag);
    if (id) el.id = id;
    if (classes.length) el.className = classes.join(" ");
    setAttrs(el, attrs);
    if (classes.length && attrs && attrs.class) el.classList.add(...classes);
    return append(el, kids);
  }

  function svg(tag, attrs, ...kids) {
    const el = document.createElementNS(SVG_NS, tag);
    setAttrs(el, attrs);
    return append(el, kids);
  }

  function parseSpec(spec) {
    const m = /^([a-z0-9]+)?(?:#([\w-]+))?((?:\.[\w-]+)*)$/i.exec(spec);
    if (!m) throw new Error("bad element spec " + spec);
    return { tag: m[1] || "div", id: m[2] || null, classes: m[3] ? m[3].slice(1).split(".") : [] };
  }

  function $(sel, root = document) {
    return root.querySelector(sel);
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
    return el;
  }

  function option(value, label, selected) {
    const o = h("option", { value }, label == null ? value : label);
    if (selected) o.selected = true;
    return o;
  }

  function field(labelText, control, extraClass) {
    return h("div", { class: ["field", extraClass] }, h("label", { for: control.id }, labelText), control);
  }

  // ---------------------------------------------------------------- formatting

  function fmtScore(v) {
    return typeof v === "number" && isFinite(v) ? v.toFixed(2) : "–";
  }

  function fmtTime(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    const p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
  }

  function fmtAge(iso) {
    if (!iso) return "–";
    const t = new Date(iso).getTime();
    if (isNaN(t)) return "–";
    const s = Math.max(0, (Date.now() - t) / 1000);
    if (s < 60) return `${Math.floor(s)}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m`;
    if (s < 86400) return `${Math.floor(s / 3600)}h`;
    return `${Math.floor(s / 86400)}d`;
  }

  function timeEl(iso, text) {
    return h("time", { datetime: iso || null, title: iso || null }, text == null ? fmtTime(iso) : text);
  }

  function dash(v) {
    return v == null || v === "" ? "–" : String(v);
  }

  function verdictBadge(verdict) {
    const v = verdict ? String(verdict) : "unknown";
    const known = ["block", "review", "allow"].includes(v) ? v : "unknown";
    return h("span", { class: `badge badge-${known}` }, v);
  }

  /**
   * A word for a queue priority. The pipeline ranks bank hits above 1,000,000 (by bank
   * severity) and model reviews by their top explicit score times 1000.
   */
  function priorityLabel(p) {
    const n = Number(p);
    if (!isFinite(n)) return "–";
    if (n >= 1000000) return "urgent";
    if (n >= 900) return "high";
    if (n >= 600) return "normal";
    return "low";
  }

  /** A bank's chip, coloured by what the bank does: known-bad red, watch amber, allow green. */
  function bankChip(name, actions) {
    const action = actions && actions[name];
    const cls = action === "allow" ? "chip-allow" : action === "review" ? "chip-watch" : "chip-bank";
    const title = action === "allow" ? "allow list: clears model verdicts, never a known-bad match"
      : action === "review" ? "watch list: sends matches to review" : "known-bad: blocks matches";
    return h("span", { class: ["chip", cls], title }, name);
  }

  /** A reason without bank entry ids (long and meaningless to a reviewer; the item lists them). */
  function readableReason(reason) {
    return String(reason).replace(/ entry \S+/g, "");
  }

  function summarize(detail, max = 160) {
    if (detail == null) return "";
    if (typeof detail !== "object") return truncate(String(detail), max);
    const parts = Object.entries(detail).map(([k, v]) => {
      const val = v !== null && typeof v === "object" ? JSON.stringify(v) : String(v);
      return `${k}: ${val}`;
    });
    return truncate(parts.join("; "), max);
  }

  function truncate(s, max) {
    return s.length > max ? s.slice(0, max - 1) + "…" : s;
  }

  // ---------------------------------------------------------------- errors

  class ApiError extends Error {
    constructor(status, kind, message) {
      super(message);
      this.status = status;
      this.kind = kind;
    }
  }

  function showError(err) {
    const box = $("#error");
    const msg = (err && err.message) || String(err);
    box.textContent = msg; // exactly the API's error.message
    if (err instanceof ApiError) {
      box.dataset.kind = err.kind;
      box.dataset.status = String(err.status);
    } else {
      delete box.dataset.kind;
      delete box.dataset.status;
      if (!(err instanceof UiError)) console.error(err); // programming errors: keep the stack too
    }
    box.hidden = false;
    $("#error-bar").hidden = false;
  }

  function clearError() {
    const box = $("#error");
    box.textContent = "";
    box.hidden = true;
    $("#error-bar").hidden = true;
  }

  /** A validation message for the reviewer (not a bug). */
  class UiError extends Error {}

  // ---------------------------------------------------------------- API

  async function api(method, path, body, { retried = false, redirectOn401 = true } = {}) {
    const headers = { Accept: "application/json" };
    const opts = { method, credentials: "same-origin", headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    if (method !== "GET" && method !== "HEAD" && state.csrf) headers["X-CSRF-Token"] = state.csrf;

    let res;
    try {
      res = await fetch(path, opts);
    } catch (e) {
      throw new ApiError(0, "network", `Network error talking to the server (${e.message})`);
    }
    const text = await res.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (_) {
        data = null;
      }
    }
    if (res.ok) return data;

    const e = data && data.error ? data.error : {};
    const err = new ApiError(res.status, e.kind || "http", e.message || `${res.status} ${res.statusText || "error"}`);

    // A stale CSRF token (e.g. session rotated in another tab): refresh it once and retry.
    if (res.status === 403 && err.kind === "csrf" && !retried && path !== `${API}/login`) {
      try {
        const me = await api("GET", `${API}/me`, undefined, { redirectOn401 });
        state.user = me.user;
        state.csrf = me.csrf_token;
        return await api(method, path, body, { retried: true, redirectOn401 });
      } catch (_) {
        throw err;
      }
    }
    if (res.status === 401 && redirectOn401 && path !== `${API}/login`) {
      // Session gone: go to the login page and come back afterwards.
      state.user = null;
      state.csrf = null;
      goLogin();
    }
    throw err;
  }

  // ---------------------------------------------------------------- routing

  function currentUrl() {
    return location.pathname + location.search;
  }

  function safeNext(next) {
    if (typeof next !== "string") return null;
    if (!/^\/console(?:[/?#]|$)/.test(next)) return null; // same-origin console paths only
    if (/^\/console\/login(?:[/?#]|$)/.test(next)) return null;
    if (next.includes("\\")) return null;
    return next;
  }

  function goLogin() {
    if (/^\/console\/login\/?$/.test(location.pathname)) return route(); // keep ?next=
    const here = currentUrl();
    const next = safeNext(here);
    navigate("/console/login" + (next ? "?next=" + encodeURIComponent(next) : ""), { replace: true });
  }

  function navigate(url, { replace = false } = {}) {
    if (replace) history.replaceState(null, "", url);
    else history.pushState(null, "", url);
    route();
  }

  function onLinkClick(ev) {
    if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    const a = ev.target.closest && ev.target.closest("a[href]");
    if (!a || a.target || a.hasAttribute("download")) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || !/^\/console(?:\/|$)/.test(url.pathname)) return;
    ev.preventDefault();
    navigate(url.pathname + url.search);
  }

  function route() {
    const seq = ++state.renderSeq;
    clearError();
    const path = location.pathname.replace(/\/+$/, "") || "/";
    renderNav(path);

    if (path === "/console/login") return renderLogin(seq);
    if (!state.user) return goLogin();

    let m;
    if (path === "/console") return renderQueue(seq);
    if ((m = /^\/console\/items\/([^/]+)$/.exec(path))) return renderItem(seq, decodeURIComponent(m[1]));
    if (path === "/console/appeals") return renderAppeals(seq);
    if ((m = /^\/console\/appeals\/([^/]+)$/.exec(path))) return renderAppeal(seq, decodeURIComponent(m[1]));
    if (path === "/console/dashboard") return renderDashboard(seq);
    if (path === "/console/audit") return renderAudit(seq);
    return renderNotFound();
  }

  function isCurrent(seq) {
    return seq === state.renderSeq;
  }

  function setPage(title, ...kids) {
    document.title = `${title} · coverguard review`;
    const app = clear($("#app"));
    append(app, kids);
    return app;
  }

  function renderNav(path) {
    const nav = clear($("#nav"));
    if (!state.user || path === "/console/login") {
      nav.hidden = true;
      return;
    }
    const link = (id, href, text, active) =>
      h("a", { id, href, class: active ? "active" : null, "aria-current": active ? "page" : null }, text);
    append(nav, [
      link("nav-queue", "/console", "Queue", path === "/console" || path.startsWith("/console/items/")),
      link("nav-appeals", "/console/appeals", "Appeals", path.startsWith("/console/appeals")),
      link("nav-dashboard", "/console/dashboard", "Dashboard", path === "/console/dashboard"),
      state.user.role === "admin" ? link("nav-audit", "/console/audit", "Audit", path === "/console/audit") : null,
      h("span.spacer"),
      h("span#whoami", null, `${state.user.username} (${state.user.role})`),
      h("button#logout", { type: "button", onclick: logout }, "Log out"),
    ]);
    nav.hidden = false;
  }

  async function logout() {
    const btn = $("#logout");
    if (btn) btn.disabled = true;
    try {
      await api("POST", `${API}/logout`);
      state.user = null;
      state.csrf = null;
      navigate("/console/login", { replace: true });
    } catch (e) {
      if (btn) btn.disabled = false;
      if (e.status !== 401) showError(e);
    }
  }

  function renderNotFound() {
    setPage("Not found", h("h1", null, "Page not found"), h("p", null, h("a", { href: "/console" }, "Back to the queue")));
  }

  // ---------------------------------------------------------------- login

  function renderLogin(seq) {
    const params = new URLSearchParams(location.search);
    const next = safeNext(params.get("next")) || "/console";
    if (state.user) {
      navigate(next, { replace: true });
      return;
    }
    const username = h("input#username", { name: "username", type: "text", autocomplete: "username", required: true, autofocus: true });
    const password = h("input#password", { name: "password", type: "password", autocomplete: "current-password", required: true });
    const submit = h("button#login-submit.primary", { type: "submit" }, "Log in");
    const loginError = h("p#login-error.form-error", { role: "alert", hidden: true });
    const form = h("form#login-form", { novalidate: false },
      field("Username", username),
      field("Password", password),
      loginError,
      h("div.actions", null, submit));

    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearError();
      loginError.hidden = true;
      submit.disabled = true;
      try {
        const res = await api("POST", `${API}/login`, { username: username.value, password: password.value });
        state.user = res.user;
        state.csrf = res.csrf_token;
        navigate(next, { replace: true });
      } catch (e) {
        if (!isCurrent(seq)) return;
        submit.disabled = false;
        if (e.status === 401) {
          loginError.textContent = e.message || "Wrong username or password.";
          loginError.hidden = false;
          password.value = "";
          password.focus();
        } else {
          showError(e);
        }
      }
    });

    setPage("Log in", h("section.login-card", null, h("h1", null, "Reviewer login"), form));
    username.focus();
  }

  // ---------------------------------------------------------------- queue

  function queueFiltersFromUrl() {
    const p = new URLSearchParams(location.search);
    const f = {};
    for (const k of QUEUE_FILTERS) f[k] = (p.get(k) || "").trim();
    if (!queueStates().includes(f.state)) f.state = "open";
    if (!QUEUE_VERDICTS.includes(f.verdict)) f.verdict = "any";
    if (f.reported !== "true") f.reported = "";
    f.limit = (p.get("limit") || "").trim();
    f.after = (p.get("after") || "").trim();
    return f;
  }

  function queueStates() {
    const admin = state.user && state.user.role === "admin";
    return QUEUE_STATES.filter((s) => admin || !ADMIN_STATES.includes(s));
  }

  function stateLabel(s) {
    return STATE_LABELS[s] || s;
  }

  function queueQuery(f, { forApi }) {
    const q = new URLSearchParams();
    for (const k of QUEUE_FILTERS) {
      const v = f[k];
      if (!v) continue;
      if (k === "verdict" && v === "any") continue;
      if (k === "state" && v === "open" && !forApi) continue;
      q.set(k, v);
    }
    if (/^\d+$/.test(f.limit || "")) q.set("limit", f.limit);
    if (f.after) q.set("after", f.after);
    const s = q.toString();
    return s ? "?" + s : "";
  }

  async function renderQueue(seq) {
    const f = queueFiltersFromUrl();

    const stateSel = h("select#f-state", { name: "state" }, queueStates().map((s) => option(s, stateLabel(s), s === f.state)));
    const verdictSel = h("select#f-verdict", { name: "verdict" }, QUEUE_VERDICTS.map((v) => option(v, v, v === f.verdict)));
    const textInput = (id, name, placeholder) =>
      h(`input#${id}`, { name, type: "text", value: f[name], placeholder, autocomplete: "off", spellcheck: "false" });
    const date = (id, name) => h(`input#${id}`, { name, type: "date", value: f[name] });
    const reportedBox = h("input#f-reported", { name: "reported", type: "checkbox", value: "true" });
    reportedBox.checked = f.reported === "true";

    const form = h("form#queue-filters.filters", { role: "search", "aria-label": "Queue filters" },
      field("State", stateSel),
      field("Verdict", verdictSel),
      field("Label", textInput("f-label", "label", "e.g. FEMALE_BREAST_EXPOSED"), "field-wide"),
      field("Bank", textInput("f-bank", "bank", "bank name")),
      field("Owner", textInput("f-owner", "owner", "owner id")),
      field("From", date("f-from", "from")),
      field("To", date("f-to", "to")),
      field("Reported by people", reportedBox),
      h("div.field.field-actions", null,
        h("button.primary", { type: "submit" }, "Apply"),
        h("button", { type: "button", onclick: () => navigate("/console") }, "Reset")));

    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const nf = {
        state: stateSel.value,
        verdict: verdictSel.value,
        label: $("#f-label", form).value.trim(),
        bank: $("#f-bank", form).value.trim(),
        owner: $("#f-owner", form).value.trim(),
        from: $("#f-from", form).value,
        to: $("#f-to", form).value,
        reported: reportedBox.checked ? "true" : "",
        limit: f.limit,
        after: "", // new filters start on the first page
      };
      navigate("/console" + queueQuery(nf, { forApi: false }));
    });

    const summary = h("p#queue-summary.muted", null, "Loading…");
    const tbody = h("tbody");
    const table = h("table#queue-table.data", null,
      h("thead", null, h("tr", null,
        ["Priority", "Verdict", "Top label", "Banks", "Owner", "Artwork", "Age", "State", ""].map((t) => h("th", { scope: "col" }, t)))),
      tbody);
    const empty = h("p#queue-empty.empty", { hidden: true }, f.after ? "No more items" : "Nothing to review");
    const pager = h("nav#queue-pager.pager", { "aria-label": "Queue pages" });

    setPage("Queue", h("div.page-head", null, h("h1", null, "Review queue"), summary), form, empty,
      h("div.table-wrap", null, table), pager);

    let data;
    try {
      data = await api("GET", `${API}/queue${queueQuery(f, { forApi: true })}`);
    } catch (e) {
      if (!isCurrent(seq)) return;
      summary.textContent = "Could not load the queue.";
      return showError(e);
    }
    if (!isCurrent(seq)) return;

    const items = (data && data.items) || [];
    const page = f.after ? "next page" : "first page";
    summary.textContent = `${items.length} item${items.length === 1 ? "" : "s"} on the ${page} · ${stateLabel(f.state)}`;
    if (f.after) pager.appendChild(h("a#queue-first", { href: "/console" + queueQuery({ ...f, after: "" }, { forApi: false }) }, "← First page"));
    if (data && data.next_cursor) {
      pager.appendChild(h("a#queue-next", { href: "/console" + queueQuery({ ...f, after: data.next_cursor }, { forApi: false }) }, "Next page →"));
    }
    if (!items.length) {
      empty.hidden = false;
      table.hidden = true;
      return;
    }
    const reports = (data && data.user_reports) || {};
    for (const it of items) tbody.appendChild(queueRow(it, (data && data.bank_actions) || {}, reports[it.id] || 0));
  }

  function queueRow(it, bankActions, reportCount) {
    const id = String(it.id);
    const href = `/console/items/${encodeURIComponent(id)}`;
    const mine = state.user && it.claimed_by === state.user.username;

    const banks = (it.banks || []).length
      ? h("span.chips", null, it.banks.map((b) => bankChip(b, bankActions)))
      : h("span.muted", null, "–");

    const stateCell = h("td.col-state", null,
      h("span", { class: `state state-${it.state}` }, it.state),
      it.level === "admin" ? [" ", h("span.badge.badge-escalated", null, "escalated")] : null,
      it.claimed_by ? h("div.sub", null, `by ${it.claimed_by}${mine ? " (you)" : ""}`) : null,
      it.decision ? h("div.sub", null, DECISION_WORDS[it.decision] || it.decision) : null);

    let claimBtn = null;
    if (it.state !== "decided") {
      claimBtn = h("button.claim-button", { type: "button" }, mine ? "Continue" : "Claim");
      claimBtn.addEventListener("click", async () => {
        claimBtn.disabled = true;
        clearError();
        try {
          await api("POST", `${API}/items/${encodeURIComponent(id)}/claim`);
          navigate(href);
        } catch (e) {
          claimBtn.disabled = false;
          showError(e);
        }
      });
    }

    const priority = priorityLabel(it.priority);
    return h("tr.queue-row", { dataset: { reviewId: id, artworkId: it.artwork_id || "" } },
      h("td.col-priority", { title: `priority ${dash(it.priority)}`, dataset: { priority: dash(it.priority) } },
        h("span", { class: `priority priority-${priority}` }, priority)),
      h("td", null, verdictBadge(it.verdict)),
      h("td.col-label", null,
        it.top_label ? [h("span.label-name", null, it.top_label), " ", h("span.score", null, fmtScore(it.top_score))] : h("span.muted", null, "–"),
        it.reason ? h("div.sub", { title: it.reason }, readableReason(it.reason)) : null,
        reportCount ? h("div.sub", null, h("span.badge.badge-reported", { title: "reports from people, counted on this item" },
          `reported ×${reportCount}`)) : null),
      h("td", null, banks),
      h("td.mono", null, it.owner_id ? h("a.owner-link", { href: `/console?owner=${encodeURIComponent(it.owner_id)}`, title: "Filter by this owner" }, it.owner_id) : "–"),
      h("td.mono", null, dash(it.artwork_id)),
      h("td", null, timeEl(it.created_at, fmtAge(it.created_at))),
      stateCell,
      h("td.col-actions", null, h("a.open-item", { href }, "Open"), claimBtn));
  }

  // ---------------------------------------------------------------- item

  async function renderItem(seq, id, { outcome = null } = {}) {
    if (!outcome) setPage(`Item ${id}`, h("p.muted", null, "Loading…"));
    let data;
    try {
      data = await api("GET", `${API}/items/${encodeURIComponent(id)}`);
    } catch (e) {
      if (!isCurrent(seq)) return;
      if (outcome) {
        // The decision went through, but the item did not reload. After an escalation a
        // reviewer no longer sees the item (the server answers 404): that is expected.
        const note = $("#decision-result");
        const gone = outcome.decision === "escalate" && (e.status === 404 || e.status === 403);
        if (note) {
          note.appendChild(h("div.sub", null, gone
            ? "It is now with the admins and has left your queue."
            : `(Could not reload the item: ${e.message})`));
        }
        if (!gone) showError(e);
        return;
      }
      setPage(`Item ${id}`, h("h1", null, `Item ${id}`), h("p", null, h("a", { href: "/console" }, "← Back to the queue")));
      return showError(e);
    }
    if (!isCurrent(seq)) return;
    buildItemPage(seq, id, data, outcome);
  }

  function buildItemPage(seq, id, data, outcome) {
    const it = data.item || {};
    const sc = data.screening || {};
    const me = state.user;
    const isAdmin = me.role === "admin";
    const mine = it.claimed_by != null && it.claimed_by === me.username;
    const decided = it.state === "decided";
    const lockedForMe = it.level === "admin" && !isAdmin;
    const rerender = (opts) => renderItem(seq, id, opts);

    const title = itemTitle(it, sc, data.artwork, id);
    const head = h("div.page-head", null,
      h("p.crumbs", null, h("a", { href: "/console" }, "← Queue")),
      h("h1", null, `${title} `, verdictBadge(it.verdict || sc.verdict),
        " ", h("span", { class: `state state-${it.state}` }, it.state),
        it.level === "admin" ? [" ", h("span.badge.badge-escalated", null, "escalated")] : null),
      it.reason ? h("p.muted", { title: it.reason }, `Queued because: ${readableReason(it.reason)}`) : null,
      stateNotices(data));

    const views = itemViews(sc);
    const shown = decidingIndex(views, sc.decided_by);
    const left = h("div.col-left", null,
      artworkPanel(id, data, views, shown),
      settingsPanel(),
      scoresPanel(views[shown]));

    const right = h("div.col-right", null,
      claimPanel(it, { mine, decided, lockedForMe, rerender }),
      decisionPanel(id, it, data.options || {}, {
        decided, lockedForMe, outcome, rerender,
        superseded: data.superseded_by || null,
        ownerTakenDown: data.owner_taken_down === true,
        wordsOnly: sc.has_image === false,
      }),
      reportsPanel(data.user_reports || []),
      textPanel(sc),
      metaPanel(it, sc, data.artwork),
      matchesPanel(sc.matches || [], views.length > 1, data.bank_actions || {}),
      artworkItemsPanel(data.artwork_items || [], it),
      ownerArtworksPanel(data.owner_artworks || [], data.artwork, it),
      historyPanel(data.history || []));

    setPage(title, head, h("div.item-grid", null, left, right));
  }

  /** What people reported about the artwork or its owner, oldest first; absent without any. */
  function reportsPanel(reports) {
    if (!reports.length) return null;
    return h("section#user-reports.panel", { "aria-labelledby": "user-reports-h" },
      h("h2#user-reports-h", null, `Reported by people (${reports.length})`),
      h("ul.report-list", null, reports.map((r) => h("li.user-report", { dataset: { reportId: r.id } },
        h("div", null,
          h("strong", null, REPORTER_WORDS[r.reporter_kind] || r.reporter_kind), " reported ",
          r.subject === "owner" ? "the owner's art" : "this artwork",
          ": ", h("span.report-category", null, CATEGORY_WORDS[r.category] || r.category)),
        h("div.sub", null, timeEl(r.created_at), " · ", h("span.mono", null, r.reporter_ref)),
        r.text ? h("blockquote.report-text", null, r.text) : null))));
  }

  /** "Artwork art-1 by owner-1": what the reviewer knows the item by (its id is in Details). */
  function itemTitle(it, sc, artwork, id) {
    const art = it.artwork_id || (artwork && artwork.artwork_id);
    const owner = it.owner_id || (artwork && artwork.owner_id);
    if (!art) return `Screening ${sc.id || it.screening_id || id}`;
    return owner ? `Artwork ${art} by ${owner}` : `Artwork ${art}`;
  }

  /** Every queue item of this artwork (one per screening), so earlier ones stay reachable. */
  function artworkItemsPanel(rows, it) {
    const panel = h("section#artwork-items.panel", { "aria-labelledby": "artwork-items-h" },
      h("h2#artwork-items-h", null, "Screenings of this artwork"));
    if (rows.length < 2) {
      panel.appendChild(h("p.muted", null, "Screened once."));
      return panel;
    }
    panel.appendChild(h("table.data.compact", null,
      h("thead", null, h("tr", null, ["Queued", "Verdict", "State", "Item"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", null, rows.map((r) => {
        const self = String(r.id) === String(it.id);
        return h("tr", { class: self ? "current" : null, dataset: { screeningId: r.screening_id } },
          h("td", null, timeEl(r.created_at)),
          h("td", null, verdictBadge(r.verdict)),
          h("td", null, h("span", { class: `state state-${r.state}` }, r.state),
            r.decision ? h("span.muted", null, ` (${DECISION_WORDS[r.decision] || r.decision})`) : null),
          h("td", null, self ? h("span.muted", null, "this item")
            : h("a", { href: `/console/items/${encodeURIComponent(r.id)}` }, "Open")));
      }))));
    return panel;
  }

  // ---------------------------------------------------------------- views
  //
  // Screening looks at the reference decoding (first frame, alpha dropped) and at every other
  // picture a viewer is shown: each frame of an animation, and translucent art over the page
  // colours. The reviewer steps through all of them; each image is served (blurred unless
  // revealed) by the server, which renders only views the screening lists.

  /** The reference, then each view, as the console steps through them. */
  function itemViews(sc) {
    const list = [{ frame: null, rendering: null, detections: sc.detections || [], scores: sc.scores || {}, pdq: sc.pdq }];
    for (const v of sc.views || []) {
      list.push({ frame: v.frame, rendering: String(v.rendering), detections: v.detections || [], scores: v.scores || {}, pdq: v.pdq });
    }
    return list;
  }

  function sameView(a, b) {
    return a != null && b != null && String(a.frame) === String(b.frame) && String(a.rendering) === String(b.rendering);
  }

  /** The view that decided the verdict, or the reference. */
  function decidingIndex(views, decidedBy) {
    const i = decidedBy ? views.findIndex((v) => sameView(v, decidedBy)) : -1;
    return i > 0 ? i : 0;
  }

  /** "frame 1", "frame 1 over #ffffff", "the default image over #121212"; "reference" without a frame. */
  function viewName(frame, rendering) {
    if (frame == null) return "reference (first frame)";
    const picture = frame === "default" ? "the default image" : `frame ${frame}`;
    const over = /^over_([0-9a-f]{6})$/i.exec(String(rendering || ""));
    return over ? `${picture} over #${over[1].toLowerCase()}` : picture;
  }

  function imageUrl(id, mode, view) {
    const bust = state.imageBust ? `&v=${state.imageBust}` : "";
    const which = view && view.frame != null
      ? `&frame=${encodeURIComponent(view.frame)}&rendering=${encodeURIComponent(view.rendering)}`
      : "";
    return `${API}/items/${encodeURIComponent(id)}/image?mode=${mode}${which}${bust}`;
  }

  /** The view the image element shows, from its data attributes. */
  function shownView(img) {
    return img && img.dataset.frame ? { frame: img.dataset.frame, rendering: img.dataset.rendering } : null;
  }

  function drawBoxes(boxes, detections, W, Hh) {
    clear(boxes);
    for (const d of detections || []) {
      const b = Array.isArray(d.box) ? d.box.map(Number) : [];
      if (b.length !== 4 || !W || !Hh || b.some((n) => !isFinite(n))) continue;
      const cls = /_EXPOSED$/.test(d.label) ? "box-exposed" : /_COVERED$/.test(d.label) ? "box-covered" : "box-other";
      const el = h("div", { class: ["box", cls], dataset: { label: d.label, score: d.score } },
        h("span.box-caption", null, `${d.label} ${fmtScore(d.score)}`));
      const pct = (v, total) => `${Math.max(0, Math.min(100, (v / total) * 100)).toFixed(3)}%`;
      el.style.left = pct(b[0], W);
      el.style.top = pct(b[1], Hh);
      el.style.width = pct(Math.min(b[2], W - b[0]), W);
      el.style.height = pct(Math.min(b[3], Hh - b[1]), Hh);
      if (b[1] / Hh < 0.06) el.classList.add("caption-inside"); // no room above the box
      boxes.appendChild(el);
    }
  }

  /** The lines of text read in the view, as outlined quadrilaterals over it (one SVG in the
   *  image's own pixels, stretched with it). A line first read in the reference belongs to it. */
  function drawTextBoxes(boxes, lines, view, W, Hh) {
    const here = (lines || []).filter((l) => (l.view ? sameView(view, l.view) : view.frame == null));
    const quads = here.filter((l) => Array.isArray(l.box) && l.box.length === 4 &&
      l.box.every((p) => Array.isArray(p) && p.length === 2 && p.every((n) => isFinite(Number(n)))));
    if (!quads.length || !W || !Hh) return;
    const layer = svg("svg", { class: "ocr-boxes", viewBox: `0 0 ${W} ${Hh}`, preserveAspectRatio: "none" });
    for (const l of quads) {
      layer.appendChild(svg("polygon", {
        class: "ocr-box",
        points: l.box.map((p) => p.map(Number).join(",")).join(" "),
        "data-text": l.text,
      }));
    }
    boxes.appendChild(layer);
  }

  function artworkPanel(id, data, views, initial) {
    const sc = data.screening || {};
    const panel = h("section.panel.artwork-panel", { "aria-labelledby": "artwork-h" }, h("h2#artwork-h", null, "Artwork"));
    const decidedBy = sc.decided_by
      ? h("p#decided-by.decided-by", null, "Decided by ", h("strong", null, viewName(sc.decided_by.frame, sc.decided_by.rendering)),
        ", shown first.")
      : null;

    if (sc.has_image === false) {
      panel.appendChild(h("p#words-only.empty", null, "No image: the title and description were screened alone."));
      return panel;
    }
    if (!data.evidence) {
      append(panel, [decidedBy, h("p#no-evidence.empty", null, "No image kept for this screening (evidence not retained).")]);
      if ((sc.detections || []).length) panel.appendChild(h("p.muted", null, `${sc.detections.length} detection(s); see the scores below.`));
      return panel;
    }

    // Every view is the file's canvas: the reference's size, so its boxes are in the same pixels.
    const W = Number(sc.width) || 0;
    const Hh = Number(sc.height) || 0;
    const img = h("img#artwork-image", {
      alt: "Artwork, blurred safe view",
      "data-mode": "safe",
      decoding: "async",
      referrerpolicy: "no-referrer",
      draggable: "false",
    });
    const imgError = h("p.form-error", { hidden: true }, "The image could not be loaded.");
    img.addEventListener("error", () => { imgError.hidden = false; });
    img.addEventListener("load", () => { imgError.hidden = true; });

    const boxes = h("div#boxes", { "aria-hidden": "true" });
    boxes.hidden = !state.showBoxes;
    const frame = h("div#artwork-frame", null, img, boxes);
    if (W && Hh) {
      frame.style.aspectRatio = `${W} / ${Hh}`;
      // Keep tall images on screen: at most 480px wide and about 600px high.
      frame.style.maxWidth = `${Math.min(480, Math.round((600 * W) / Hh))}px`;
    }

    const toggle = h("input#toggle-boxes", { type: "checkbox" });
    toggle.checked = state.showBoxes;
    toggle.addEventListener("change", () => {
      state.showBoxes = toggle.checked;
      boxes.hidden = !toggle.checked;
    });

    const reveal = h("button#reveal.warn", { type: "button", "aria-pressed": "false" }, "Reveal");
    function setMode(mode) {
      const revealing = mode === "reveal";
      img.src = imageUrl(id, mode, shownView(img));
      img.dataset.mode = mode;
      img.alt = revealing ? "Artwork, revealed (unblurred)" : "Artwork, blurred safe view";
      frame.classList.toggle("revealed", revealing);
      reveal.textContent = revealing ? "Hide" : "Reveal";
      reveal.setAttribute("aria-pressed", String(revealing));
    }
    reveal.addEventListener("click", () => setMode(img.dataset.mode !== "reveal" ? "reveal" : "safe"));

    // The stepper: previous / next through the reference and every view.
    const prev = h("button#view-prev", { type: "button", "aria-label": "Previous view" }, "← Previous");
    const next = h("button#view-next", { type: "button", "aria-label": "Next view" }, "Next →");
    const position = h("span#view-position.muted.small", { role: "status" });
    const viewLabel = h("strong#view-label");
    let current = initial;
    function show(index) {
      current = Math.max(0, Math.min(views.length - 1, index));
      const v = views[current];
      if (v.frame != null) {
        img.dataset.frame = String(v.frame);
        img.dataset.rendering = String(v.rendering);
      } else {
        delete img.dataset.frame;
        delete img.dataset.rendering;
      }
      img.dataset.viewIndex = String(current);
      // Each view starts blurred: a reveal covers the picture it was asked for only.
      setMode("safe");
      drawBoxes(boxes, v.detections, W, Hh);
      drawTextBoxes(boxes, sc.text && sc.text.ocr, v, W, Hh);
      viewLabel.textContent = viewName(v.frame, v.rendering);
      const decided = sameView(v, sc.decided_by) || (v.frame == null && !sc.decided_by);
      position.textContent = `view ${current + 1} of ${views.length}` + (decided ? " · decided the verdict" : "");
      prev.disabled = current === 0;
      next.disabled = current === views.length - 1;
    }
    function step(by) {
      show(current + by);
      const scores = $("#scores-panel");
      if (scores) scores.replaceWith(scoresPanel(views[current]));
    }
    prev.addEventListener("click", () => step(-1));
    next.addEventListener("click", () => step(1));
    const stepper = views.length > 1
      ? h("div#view-stepper.view-stepper", null, prev, h("span.view-now", null, viewLabel, " ", position), next)
      : null;
    show(initial);

    append(panel, [
      decidedBy,
      stepper,
      frame,
      imgError,
      h("div.image-controls", null,
        h("label.inline", { for: "toggle-boxes" }, toggle, " Show boxes"),
        h("span.spacer"),
        reveal,
        h("span.reveal-warning", null, "Revealing is logged")),
      h("p.muted.small", null, `${dash(sc.width)}×${dash(sc.height)} ${dash(sc.format)} · model ${dash(sc.model)}`),
    ]);
    return panel;
  }

  function settingsPanel() {
    const s = (state.user && state.user.settings) || { blur: 12, grayscale: true, grayscale_reveal: false };
    const blur = h("input#blur-level", { type: "range", min: "2", max: "40", step: "1", value: String(s.blur) });
    const blurOut = h("output#blur-value", { for: "blur-level" }, String(s.blur));
    blur.addEventListener("input", () => { blurOut.textContent = blur.value; });
    const gray = h("input#grayscale", { type: "checkbox" });
    gray.checked = !!s.grayscale;
    const grayReveal = h("input#grayscale-reveal", { type: "checkbox" });
    grayReveal.checked = !!s.grayscale_reveal;
    const save = h("button#save-settings", { type: "button" }, "Save settings");
    const saved = h("span.muted.small", { role: "status" });

    save.addEventListener("click", async () => {
      save.disabled = true;
      saved.textContent = "";
      clearError();
      try {
        const res = await api("PUT", `${API}/me/settings`, { blur: parseInt(blur.value, 10), grayscale: gray.checked, grayscale_reveal: grayReveal.checked });
        if (res && res.user) state.user = res.user;
        if (res && res.csrf_token) state.csrf = res.csrf_token;
        saved.textContent = "Saved.";
        // Re-fetch the image with the new settings (cache-busting query parameter).
        state.imageBust = Date.now();
        const img = $("#artwork-image");
        if (img) img.src = imageUrl(currentItemId(), img.dataset.mode || "safe", shownView(img));
      } catch (e) {
        showError(e);
      } finally {
        save.disabled = false;
      }
    });

    return h("section.panel.settings-panel", { "aria-labelledby": "settings-h" },
      h("h2#settings-h", null, "View settings"),
      h("div.settings-row", null,
        h("label", { for: "blur-level" }, "Blur"), blur, blurOut,
        h("label.inline", { for: "grayscale" }, gray, " Grayscale"),
        h("label.inline", { for: "grayscale-reveal", title: "Off: a revealed image is shown in colour" }, grayReveal, " Grayscale when revealed"),
        save, saved));
  }

  function currentItemId() {
    const m = /^\/console\/items\/([^/]+)/.exec(location.pathname);
    return m ? decodeURIComponent(m[1]) : "";
  }

  /** The label scores of one view (the reference's by default). */
  function scoresPanel(view) {
    const entries = Object.entries(view.scores || {})
      .filter(([, v]) => typeof v === "number" && isFinite(v))
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    const panel = h("section#scores-panel.panel", { "aria-labelledby": "scores-h" },
      h("h2#scores-h", null, "Label scores",
        view.frame != null ? h("span.muted.small", null, ` · ${viewName(view.frame, view.rendering)}`) : null));
    const tbody = h("tbody");
    for (const [label, score] of entries) {
      const bar = h("div.bar", { class: score >= 0.5 ? "bar hot" : score >= 0.2 ? "bar warm" : "bar" });
      bar.style.width = `${Math.max(0, Math.min(1, score)) * 100}%`;
      tbody.appendChild(h("tr", { dataset: { label } },
        h("td.mono.small", null, label),
        h("td.num", null, fmtScore(score)),
        h("td.bar-cell", null, h("div.bar-track", null, bar))));
    }
    if (!entries.length) tbody.appendChild(h("tr", null, h("td.muted", { colspan: "3" }, "No scores")));
    panel.appendChild(h("table#scores.data.compact", null,
      h("thead", null, h("tr", null, h("th", { scope: "col" }, "Label"), h("th.num", { scope: "col" }, "Score"), h("th", { scope: "col" }, h("span.visually-hidden", null, "Bar")))),
      tbody));
    return panel;
  }

  function claimPanel(it, { mine, decided, lockedForMe, rerender }) {
    const id = String(it.id);
    const panel = h("section#claim-panel.panel", { "aria-labelledby": "claim-h" }, h("h2#claim-h", null, "Claim"));
    let status;
    if (decided) status = it.claimed_by ? `Decided; last claimed by ${it.claimed_by}.` : "Decided.";
    else if (it.claimed_by) status = `Claimed by ${it.claimed_by}${mine ? " (you)" : ""}` + (it.claimed_at ? ` since ${fmtTime(it.claimed_at)} (${fmtAge(it.claimed_at)} ago)` : "");
    else status = "Not claimed.";
    panel.appendChild(h("p#claim-status", null, status));
    if (lockedForMe) {
      panel.appendChild(h("p.notice", null, "Escalated to admins: you can look, but only an admin can act on it."));
      return panel;
    }
    if (decided) return panel;

    const act = (action, label) => {
      const btn = h(`button#${action}`, { type: "button", class: action === "claim" ? "primary" : null }, label);
      btn.addEventListener("click", async () => {
        btn.disabled = true;
        clearError();
        try {
          await api("POST", `${API}/items/${encodeURIComponent(id)}/${action}`);
          rerender();
        } catch (e) {
          btn.disabled = false;
          showError(e);
        }
      });
      return btn;
    };
    panel.appendChild(h("div.actions", null,
      mine ? act("unclaim", "Release claim") : act("claim", it.claimed_by ? "Take over claim" : "Claim")));
    return panel;
  }

  function outcomeText(outcome) {
    const word = DECISION_WORDS[outcome.decision] || String(outcome.decision);
    const parts = [];
    const n = Number(outcome.bank_entries_added) || 0;
    // The contract names the release bank `allow_list_bank`; the server sends `bank` (the bank
    // that received the hashes, for confirm and release). Accept either.
    const bank = outcome.bank || outcome.allow_list_bank || null;
    if (outcome.decision === "confirm" || n || bank) {
      parts.push(`${n} bank entr${n === 1 ? "y" : "ies"} added` + (bank ? ` to ${bank}` : ""));
    }
    // The outbox holds reports (hit, CyberTipline) and the decision event for the webhooks.
    const outbox = outcome.outbox || (outcome.report_ids || []).map((id) => ({ id, kind: "report" }));
    const reports = outbox.filter((o) => o.kind !== "decision").map((o) => o.id);
    const events = outbox.filter((o) => o.kind === "decision");
    if (reports.length) parts.push(`${reports.length} report${reports.length === 1 ? "" : "s"} filed (${reports.join(", ")})`);
    else if (outcome.decision !== "escalate" && !outcome.retried) parts.push("no report filed");
    if (outcome.released) parts.push("artwork released");
    else if (outcome.decision === "release") parts.push("no quarantined artwork to release");
    if (events.length) {
      parts.push(outcome.decision === "release" ? "the webhooks are told to publish it" : "the webhooks are told to keep it removed");
    }
    if (outcome.decision === "escalate") parts.push("handed to the admins");
    let text = `Item ${word}: ${parts.join("; ")}.`;
    if (outcome.retried) text += " (This decision had already been recorded.)";
    return text;
  }

  /** A link to the item that replaced a superseded one, or a note that there is none to see. */
  function currentItemLink(superseded) {
    return superseded.review_id
      ? h("a#current-item", { href: `/console/items/${encodeURIComponent(superseded.review_id)}` }, "Open the current item")
      : h("span.muted", null, `The current screening (${superseded.screening_id}) has no item you can open.`);
  }

  /** Why this item cannot be decided as it stands: a newer screening, or a takedown. */
  function stateNotices(data) {
    const notices = [];
    if (data.superseded_by) {
      notices.push(h("p#superseded-notice.notice", { role: "status" },
        h("strong", null, "Superseded"),
        ": the artwork was uploaded again and screened since this item was queued, so this item can no longer be decided. ",
        currentItemLink(data.superseded_by)));
    }
    if (data.owner_taken_down) {
      notices.push(h("p#taken-down-notice.notice", { role: "status" },
        h("strong", null, "Owner taken down"),
        ": an admin took this owner's account down. It cannot be released until an admin lifts the takedown."));
    }
    return notices.length ? h("div.notices", null, notices) : null;
  }

  function decisionPanel(id, it, options, { decided, lockedForMe, outcome, rerender, superseded, ownerTakenDown, wordsOnly }) {
    const panel = h("section#decision-panel.panel", { "aria-labelledby": "decision-h" }, h("h2#decision-h", null, "Decision"));
    const result = outcome
      ? h("div#decision-result.result", { role: "status" }, outcomeText(outcome))
      : null;

    if (decided) {
      append(panel, [
        result,
        h("dl.kv", null,
          h("dt", null, "Decision"), h("dd", null, h("strong", null, DECISION_WORDS[it.decision] || dash(it.decision))),
          h("dt", null, "Reason"), h("dd.mono", null, dash(it.reason_code)),
          h("dt", null, "Note"), h("dd", null, dash(it.note)),
          h("dt", null, "By"), h("dd", null, dash(it.claimed_by)),
          h("dt", null, "At"), h("dd", null, timeEl(it.decided_at))),
      ]);
      return panel;
    }
    if (lockedForMe) {
      append(panel, [result, h("p.muted", null, "Only admins can decide escalated items.")]);
      return panel;
    }
    if (superseded) {
      append(panel, [result, h("p", null, "Superseded: decide the current item instead. ", currentItemLink(superseded))]);
      return panel;
    }

    const reasonCodes = options.reason_codes || {};
    // Words screened alone have no image to bank: a confirm keeps them removed, no more.
    const banks = wordsOnly ? [] : options.banks || [];

    // Nothing preselected: each decision is an explicit choice, never a default.
    const decision = h("select#decision", { name: "decision", required: true },
      option("", "— choose a decision —", true),
      ["confirm", "release", "escalate"].map((d) => option(d, d)));
    if (ownerTakenDown) {
      // The server refuses it (409 owner_taken_down); say so before the reviewer tries.
      const release = decision.querySelector('option[value="release"]');
      if (release) {
        release.disabled = true;
        release.textContent = "release (owner taken down)";
      }
    }
    const reason = h("select#reason-code", { name: "reason_code", required: true });
    const bank = h("select#confirm-bank", { name: "bank" },
      option("", banks.length ? "— choose a bank —" : "(no banks configured)"),
      banks.map((b) => option(b.name, b.category ? `${b.name} (${b.category})` : b.name)));
    const bankField = field("Bank", bank, "field-bank");
    const note = h("textarea#note", { name: "note", rows: "3", maxlength: "2000", placeholder: "Optional note for the record" });
    const submit = h("button#decide-submit.primary", { type: "submit" }, "Submit decision");
    const fieldset = h("fieldset.decision-fields", null,
      h("legend.visually-hidden", null, "Decision"),
      field("Decision", decision),
      field("Reason", reason),
      bankField,
      field("Note", note),
      h("div.actions", null, submit));
    const form = h("form#decision-form", null, fieldset);

    function syncDecision() {
      const d = decision.value;
      const codes = reasonCodes[d] || [];
      clear(reason);
      // No preselected reason: the reviewer states one every time.
      reason.appendChild(option("", codes.length ? "— choose a reason —" : "(no reason codes)"));
      for (const c of codes) reason.appendChild(option(c, c));
      const isConfirm = d === "confirm";
      const asksBank = isConfirm && !wordsOnly;
      bankField.hidden = !asksBank;
      bank.required = asksBank;
      bank.disabled = !asksBank;
      submit.textContent = d === "confirm" ? (wordsOnly ? "Confirm (keep removed)" : "Confirm (block & report)") : d === "release" ? "Release"
        : d === "escalate" ? "Escalate" : "Choose a decision";
      submit.disabled = !d;
      submit.classList.toggle("danger", isConfirm);
    }
    decision.addEventListener("change", syncDecision);
    syncDecision();

    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearError();
      const d = decision.value;
      if (!d) return showError(new UiError("Choose a decision."));
      const body = {
        decision: d,
        reason_code: reason.value,
        note: note.value.trim() ? note.value.trim() : null,
        bank: d === "confirm" && !wordsOnly ? bank.value || null : null,
      };
      if (!body.reason_code) return showError(new UiError("Choose a reason code."));
      if (d === "confirm" && !wordsOnly && !body.bank) return showError(new UiError("Choose the bank to add the confirmed image to."));
      fieldset.disabled = true;
      try {
        const res = await api("POST", `${API}/items/${encodeURIComponent(id)}/decision`, body);
        const oc = (res && res.outcome) || { decision: d };
        let shown = $("#decision-result");
        if (!shown) {
          shown = h("div#decision-result.result", { role: "status" });
          panel.insertBefore(shown, form);
        }
        shown.textContent = outcomeText(oc);
        rerender({ outcome: oc });
      } catch (e) {
        fieldset.disabled = false;
        showError(e);
        // The item changed under the reviewer: reload it to show why and what to do instead.
        if (e.kind === "superseded" || e.kind === "owner_taken_down") rerender();
      }
    });

    if (outcome) fieldset.disabled = true; // just decided (e.g. escalated but still open): no double submit
    append(panel, [result, form]);
    return panel;
  }

  function metaPanel(it, sc, artwork) {
    const row = (k, v, cls) => [h("dt", null, k), h("dd", { class: cls || null }, v)];
    const reasons = (sc.reasons || []).length ? h("ul.plain", null, sc.reasons.map((r) => h("li", null, r))) : "–";
    const ctx = sc.context != null ? JSON.stringify(sc.context, null, 2) : "{}";
    return h("section.panel", { "aria-labelledby": "meta-h" },
      h("h2#meta-h", null, "Details"),
      h("dl#item-meta.kv", null,
        row("Verdict", verdictBadge(sc.verdict || it.verdict)),
        row("Reasons", reasons),
        row("Owner", dash(it.owner_id != null ? it.owner_id : artwork && artwork.owner_id), "mono"),
        row("Artwork", artwork
          ? [h("span.mono", null, dash(artwork.artwork_id)), " · ", h("span", { class: `status status-${artwork.status}` }, dash(artwork.status))]
          : dash(it.artwork_id), null),
        row("Uploaded", timeEl(sc.created_at)),
        row("Queued", timeEl(it.created_at)),
        row("Review item", dash(it.id), "mono"),
        row("Screening", dash(sc.id || it.screening_id), "mono"),
        row("SHA-256", dash(sc.sha256), "mono hash"),
        row("MD5", dash(sc.md5), "mono hash"),
        row("PDQ", sc.pdq ? [h("span.mono.hash", null, sc.pdq), sc.pdq_quality != null ? h("span.muted", null, ` (quality ${sc.pdq_quality})`) : null] : "–"),
        row("Context", h("details", null, h("summary", null, "Submission context"), h("pre.json", null, ctx)))));
  }

  const TEXT_KINDS = {
    phone: "phone number",
    email: "email address",
    contact_handle: "contact details",
    image_request: "request for pictures",
    sexual: "sexual solicitation",
    age: "age under 18",
    keyword: "listed term",
  };

  /** The title and description as the caller sent them, each signal's span marked. */
  function textPanel(sc) {
    const ctx = sc.context || {};
    const signals = (sc.text && sc.text.signals) || [];
    const panel = h("section#text.panel", { "aria-labelledby": "text-h" }, h("h2#text-h", null, "Words"));
    // Words read in the artwork: its lines joined by newlines, which ocr signals' offsets count in.
    const ocr = ((sc.text && sc.text.ocr) || []).map((l) => l.text).join("\n");
    const texts = { title: ctx.title, description: ctx.description, ocr: ocr || undefined };
    const names = { title: "Title", description: "Description", ocr: "In the artwork" };
    const sources = ["title", "description", "ocr"].filter((s) => typeof texts[s] === "string");
    if (!sources.length) {
      panel.appendChild(h("p.muted", null, "No title or description was given, and no words were read in the artwork."));
      return panel;
    }
    const rows = [];
    for (const source of sources) {
      rows.push(h("dt", null, names[source]),
        h("dd", { class: source === "ocr" ? "ocr-lines" : null },
          marked(texts[source], signals.filter((g) => g.source === source))));
    }
    panel.appendChild(h("dl.kv", null, rows));
    const pattern = (sc.text && sc.text.owner_pattern) || [];
    if (pattern.length) {
      panel.appendChild(h("p#owner-pattern", null,
        h("strong", null, "Owner pattern: "),
        `${pattern.length} empty playlists of this owner ask for contact or pictures, oldest first: `,
        pattern.map((id, i) => [i ? " → " : null, h("span.mono", null, id)])));
    }
    panel.appendChild(signals.length
      ? h("ul#text-signals.plain", null, signals.map((g) => h("li", null,
        h("span", { class: `text-kind text-kind-${g.kind}` }, TEXT_KINDS[g.kind] || g.kind),
        g.category ? ` (${g.category})` : null, ` in ${g.source}: `, h("q", null, g.match))))
      : h("p.muted", null, "No text signals."));
    return panel;
  }

  /** `text` with each signal's [start, end) (in characters, not UTF-16 units) in a <mark>. */
  function marked(text, signals) {
    const chars = Array.from(text);
    const spans = signals.slice().sort((a, b) => a.start - b.start);
    const out = [];
    let at = 0;
    for (const g of spans) {
      if (g.start < at || g.end > chars.length) continue; // overlapping spans keep the first
      out.push(chars.slice(at, g.start).join(""));
      out.push(h("mark.text-signal", { "data-kind": g.kind, title: TEXT_KINDS[g.kind] || g.kind }, chars.slice(g.start, g.end).join("")));
      at = g.end;
    }
    out.push(chars.slice(at).join(""));
    return h("span.text-source", null, out);
  }

  function matchesPanel(matches, withViews, bankActions) {
    const panel = h("section#matches.panel", { "aria-labelledby": "matches-h" }, h("h2#matches-h", null, "Hash matches"));
    if (!matches.length) {
      panel.appendChild(h("p.muted", null, "No hash matches"));
      return panel;
    }
    const heads = ["Bank", "Signal", "Distance", "Transform", "Entry"];
    if (withViews) heads.splice(1, 0, "View");
    panel.appendChild(h("table.data.compact", null,
      h("thead", null, h("tr", null, heads.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", null, matches.map((m) => h("tr", null,
        h("td", null, bankChip(dash(m.bank), bankActions)),
        withViews ? h("td.match-view", null, m.frame != null ? viewName(m.frame, m.rendering) : "reference") : null,
        h("td.mono", null, dash(m.signal)),
        h("td.num", null, dash(m.distance)),
        h("td", null, dash(m.transform)),
        h("td.mono.small", null, dash(m.entry)))))));
    return panel;
  }

  function ownerArtworksPanel(rows, artwork, it) {
    const current = artwork ? artwork.artwork_id : it.artwork_id;
    const panel = h("section#owner-artworks.panel", { "aria-labelledby": "owner-h" },
      h("h2#owner-h", null, "Owner's other artworks"));
    if (!rows.length) {
      panel.appendChild(h("p.muted", null, "No other artworks from this owner."));
      return panel;
    }
    panel.appendChild(h("table.data.compact", null,
      h("thead", null, h("tr", null, ["Artwork", "Status", "Verdict", "Updated"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", null, rows.map((a) => h("tr", { class: a.artwork_id === current ? "current" : null },
        h("td.mono", null, dash(a.artwork_id), a.artwork_id === current ? h("span.muted", null, " (this)") : null),
        h("td", null, h("span", { class: `status status-${a.status}` }, dash(a.status))),
        h("td", null, a.verdict ? verdictBadge(a.verdict) : "–"),
        h("td", null, timeEl(a.updated_at)))))));
    return panel;
  }

  function historyPanel(rows) {
    const panel = h("section.panel", { "aria-labelledby": "history-h" }, h("h2#history-h", null, "History"));
    const list = h("ol#history.history");
    for (const r of rows) {
      const full = r.detail != null ? JSON.stringify(r.detail) : "";
      list.appendChild(h("li", null,
        timeEl(r.at),
        " ", h("strong", null, dash(r.actor)),
        " ", h("span.action", null, dash(r.action)),
        full && full !== "{}" ? h("div.sub", { title: full }, summarize(r.detail)) : null));
    }
    if (!rows.length) list.appendChild(h("li.muted", null, "No history yet."));
    panel.appendChild(list);
    return panel;
  }

  // ---------------------------------------------------------------- appeals
  //
  // Owners contest an automatic block, a reviewer's confirm or an account takedown. The one
  // who made that decision may read the appeal but not decide it (the API refuses too).

  const APPEAL_KINDS = { automated_block: "an automatic block", review_confirm: "a reviewer's confirm", takedown: "an account takedown" };
  const APPEAL_ACTIONS = { upheld: "upheld: the decision stands", reversed: "reversed: the art is released" };

  async function renderAppeals(seq) {
    const p = new URLSearchParams(location.search);
    const decided = p.get("state") === "decided";
    const tabs = h("p#appeal-tabs.tabs", null,
      h("a", { href: "/console/appeals", class: decided ? null : "active" }, "Pending"), " · ",
      h("a", { href: "/console/appeals?state=decided", class: decided ? "active" : null }, "Decided"));
    const summary = h("p#appeals-summary.muted", null, "Loading…");
    const tbody = h("tbody");
    const table = h("table#appeals-table.data", null,
      h("thead", null, h("tr", null, ["Appealed", "Owner", "Artwork", "Filed", decided ? "Outcome" : "Level", ""].map((t) => h("th", { scope: "col" }, t)))),
      tbody);
    setPage("Appeals", h("div.page-head", null, h("h1", null, "Appeals"), summary), tabs, h("div.table-wrap", null, table));
    let data;
    try {
      data = await api("GET", `${API}/appeals${decided ? "?state=decided" : ""}`);
    } catch (e) {
      if (!isCurrent(seq)) return;
      summary.textContent = "Could not load the appeals.";
      return showError(e);
    }
    if (!isCurrent(seq)) return;
    const appeals = (data && data.appeals) || [];
    summary.textContent = appeals.length ? `${appeals.length} appeal${appeals.length === 1 ? "" : "s"}` : "No appeals";
    table.hidden = !appeals.length;
    for (const a of appeals) {
      tbody.appendChild(h("tr.appeal-row", { dataset: { appealId: a.id, artworkId: a.artwork_id || "" } },
        h("td", null, APPEAL_KINDS[a.kind] || a.kind, a.original_actor ? h("div.sub", null, `by ${a.original_actor}`) : null),
        h("td.mono", null, a.owner_id),
        h("td.mono", null, dash(a.artwork_id)),
        h("td", null, timeEl(a.created_at, fmtAge(a.created_at))),
        h("td", null, decided ? dash(a.outcome) : a.level === "admin" ? h("span.badge.badge-escalated", null, "admins") : "reviewers"),
        h("td.col-actions", null, h("a.open-appeal", { href: `/console/appeals/${encodeURIComponent(a.id)}` }, "Open"))));
    }
  }

  async function renderAppeal(seq, id, { outcome = null } = {}) {
    let data;
    try {
      data = await api("GET", `${API}/appeals/${encodeURIComponent(id)}`);
    } catch (e) {
      if (!isCurrent(seq)) return;
      setPage("Appeal", h("p.crumbs", null, h("a", { href: "/console/appeals" }, "← Appeals")));
      return showError(e);
    }
    if (!isCurrent(seq)) return;
    const a = data.appeal;
    const sc = data.screening || {};
    const what = a.artwork_id ? `Appeal of artwork ${a.artwork_id} by ${a.owner_id}` : `Appeal of ${a.owner_id}'s takedown`;
    const head = h("div.page-head", null,
      h("p.crumbs", null, h("a", { href: "/console/appeals" }, "← Appeals")),
      h("h1", null, `${what} `, h("span", { class: `state state-${a.state}` }, a.state),
        a.level === "admin" ? [" ", h("span.badge.badge-escalated", null, "admins")] : null),
      h("p#appeal-contests.muted", null, `Contests ${APPEAL_KINDS[a.kind] || a.kind}`,
        a.original_actor ? ` by ${a.original_actor}` : "", ", made ", timeEl(a.decided_originally_at), "."));
    const owner = h("section#appeal-text.panel", { "aria-labelledby": "appeal-text-h" },
      h("h2#appeal-text-h", null, "What the owner says"),
      a.text ? h("blockquote.report-text", null, a.text) : h("p.muted", null, "The owner gave no reason."));
    const left = h("div.col-left", null, owner,
      data.review ? h("p", null, h("a#appeal-item", { href: `/console/items/${encodeURIComponent(data.review.id)}` },
        data.evidence ? "Open the decided item to see the image" : "Open the decided item")) : null,
      data.screening ? scoresPanel(itemViews(sc)[0]) : null);
    const right = h("div.col-right", null,
      appealDecisionPanel(seq, a, data, outcome),
      data.screening ? metaPanel(data.review || {}, sc, data.artwork) : null,
      data.screening ? matchesPanel(sc.matches || [], false, {}) : null);
    setPage(what, head, h("div.item-grid", null, left, right));
  }

  function appealDecisionPanel(seq, a, data, outcome) {
    const panel = h("section#appeal-decision.panel", { "aria-labelledby": "appeal-decision-h" },
      h("h2#appeal-decision-h", null, "Decision"));
    if (a.state === "decided") {
      panel.appendChild(h("p#appeal-result", { role: "status" },
        `${APPEAL_ACTIONS[a.outcome] || a.outcome} (${a.reason_code}), by ${a.decided_by}`,
        outcome ? ` · ${outcome}` : null));
      return panel;
    }
    if (data.own_decision) {
      panel.appendChild(h("p#own-decision.notice", { role: "status" },
        h("strong", null, "Your decision"), ": you made the decision this appeal contests, so someone else decides it."));
      return panel;
    }
    const codes = data.reason_codes || {};
    const choice = h("select#appeal-outcome", { name: "outcome", required: true },
      option("", "— choose an outcome —", true), ["upheld", "reversed"].map((o) => option(o, o)));
    const reason = h("select#appeal-reason", { name: "reason_code", required: true });
    const note = h("textarea#appeal-note", { name: "note", rows: "3", maxlength: "2000", placeholder: "Optional note for the record" });
    const submit = h("button#appeal-submit.primary", { type: "submit", disabled: true }, "Choose an outcome");
    const sync = () => {
      clear(reason);
      append(reason, (codes[choice.value] || []).map((c) => option(c, c)));
      submit.disabled = !choice.value;
      submit.textContent = choice.value ? `Record: ${choice.value}` : "Choose an outcome";
    };
    choice.addEventListener("change", sync);
    const form = h("form#appeal-form", null, h("fieldset.decision-fields", null,
      h("legend.visually-hidden", null, "Appeal decision"),
      field("Outcome", choice),
      field("Reason", reason),
      field("Note", note),
      h("div.actions", null, submit)));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      submit.disabled = true;
      clearError();
      try {
        const body = { outcome: choice.value, reason_code: reason.value };
        if (note.value.trim()) body.note = note.value.trim();
        const done = await api("POST", `${API}/appeals/${encodeURIComponent(a.id)}/decision`, body);
        const said = done.takedown_lifted ? "the takedown is lifted"
          : done.released_items ? `released, ${done.entries_disabled} bank line(s) disabled` : "the webhooks are told";
        renderAppeal(seq, a.id, { outcome: said });
      } catch (e) {
        submit.disabled = false;
        showError(e);
      }
    });
    panel.appendChild(form);
    return panel;
  }

  // ---------------------------------------------------------------- dashboard

  async function renderDashboard(seq) {
    setPage("Dashboard", h("div.page-head", null, h("h1", null, "Dashboard")), h("p.muted", null, "Loading…"));
    let stats;
    let counts = null;
    const day = (offset) => new Date(Date.now() + offset * 86400000).toISOString().slice(0, 10);
    try {
      [stats, counts] = await Promise.all([
        api("GET", `${API}/stats`),
        api("GET", `/v1/transparency?from=${day(-29)}&to=${day(0)}`),
      ]);
    } catch (e) {
      if (!isCurrent(seq)) return;
      setPage("Dashboard", h("div.page-head", null, h("h1", null, "Dashboard")));
      return showError(e);
    }
    if (!isCurrent(seq)) return;
    stats = stats || {};
    setPage("Dashboard",
      h("div.page-head", null, h("h1", null, "Dashboard")),
      h("div.chart-grid", null,
        chartCard("chart-verdicts", "Verdicts per day (last 14 days)", verdictChart(stats.verdicts_per_day || []), "wide"),
        chartCard("chart-queue-age", "Open queue by age", queueAgeChart(stats.queue_age || [])),
        chartCard("chart-decisions", "Decisions by reviewer", decisionsChart(stats.decisions_by_reviewer || [])),
        chartCard("chart-scores", "Score distribution per label", scoresChart(stats.score_histograms || []), "wide")),
      transparencyPanel(counts || {}));
  }

  /** The transparency counts of the last 30 days, as tables of name and count. */
  function transparencyPanel(c) {
    const table = (id, caption, entries) => h(`table#${id}.data.compact`, null,
      h("caption", null, caption),
      h("tbody", null, entries.length
        ? entries.map(([k, v]) => h("tr", { dataset: { key: k } }, h("td", null, k), h("td.num", null, String(v))))
        : h("tr", null, h("td.muted", { colspan: "2" }, "none"))));
    const flat = (o) => Object.entries(o || {});
    const r = c.reviews || {};
    const a = c.appeals || {};
    const u = c.user_reports || {};
    const sent = flat(c.reports_sent).map(([kind, states]) => [kind, flat(states).map(([s, n]) => `${n} ${s}`).join(", ")]);
    return h("section#transparency.panel", { "aria-labelledby": "transparency-h" },
      h("h2#transparency-h", null, "Transparency (last 30 days)"),
      h("div.transparency-grid", null,
        table("t-verdicts", `Screenings: ${c.screenings || 0}`, flat(c.verdicts)),
        table("t-blocks", "Blocks by signal", flat(c.blocks_by_signal)),
        table("t-reviews", "Reviews", [["queued", r.queued || 0], ["decided", r.decided || 0],
          ["median time to decision", r.median_seconds_to_decision == null ? "–" : fmtDuration(r.median_seconds_to_decision)]]),
        table("t-reasons", "Decisions by reason", flat(c.decisions_by_reason)),
        table("t-user-reports", `User reports: ${u.reports || 0}`, [...flat(u.by_category), ...flat(u.by_outcome)]),
        table("t-appeals", "Appeals", [["filed", a.filed || 0], ["decided", a.decided || 0], ["upheld", a.upheld || 0],
          ["reversed", a.reversed || 0], ["reversal rate", a.reversal_rate == null ? "–" : `${Math.round(a.reversal_rate * 100)}%`]]),
        table("t-sent", "Reports sent", sent)));
  }

  function fmtDuration(seconds) {
    if (seconds < 120) return `${seconds} s`;
    if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
    return `${Math.round(seconds / 3600)} h`;
  }

  /** chart: {svg: SVGElement} or null for "no data". */
  function chartCard(id, title, chart, extra) {
    const headingId = `${id}-h`;
    const card = h("section", { class: ["panel", "chart-card", extra], "aria-labelledby": headingId }, h("h2", { id: headingId }, title));
    let el = chart;
    if (!el) {
      el = svg("svg", { viewBox: "0 0 400 60", width: "400", height: "60", class: "chart chart-empty-svg", hidden: true });
      card.appendChild(h("p.chart-empty.empty", null, "No data yet"));
    }
    el.id = id;
    el.setAttribute("role", "img");
    el.setAttribute("aria-labelledby", headingId);
    card.appendChild(el);
    return card;
  }

  function niceScale(max, ticks = 4) {
    if (!(max > 0)) return { top: 1, step: 1 };
    const raw = max / ticks;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const norm = raw / mag;
    const step = Math.max(1, (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag);
    return { top: Math.ceil(max / step) * step, step };
  }

  function fmtCount(n) {
    let s;
    if (n >= 1e6) s = `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)}M`;
    else if (n >= 1e4) s = `${(n / 1e3).toFixed(n >= 1e5 ? 0 : 1)}k`;
    else s = String(Math.round(n * 100) / 100);
    return s.replace(/\.0(?=[kM])/, "");
  }

  function text(x, y, str, attrs) {
    return svg("text", Object.assign({ x: x.toFixed(1), y: y.toFixed(1) }, attrs || {}), str);
  }

  function newChart(w, hgt) {
    const el = svg("svg", { viewBox: `0 0 ${w} ${hgt}`, width: String(w), height: String(hgt), class: "chart", preserveAspectRatio: "xMinYMin meet" });
    el.style.maxWidth = `${w}px`; // shrink on narrow screens, never blow the text up
    return el;
  }

  /** y axis with gridlines; returns y(value) mapping. */
  function yAxis(g, { x0, x1, y0, y1, max, title }) {
    const { top, step } = niceScale(max);
    const y = (v) => y0 - (v / top) * (y0 - y1);
    for (let v = 0; v <= top + 1e-9; v += step) {
      g.appendChild(svg("line", { x1: x0, x2: x1, y1: y(v).toFixed(1), y2: y(v).toFixed(1), class: v === 0 ? "axis" : "grid" }));
      g.appendChild(text(x0 - 4, y(v) + 3, fmtCount(v), { class: "tick", "text-anchor": "end" }));
    }
    if (title) g.appendChild(text(10, (y0 + y1) / 2, title, { class: "axis-title", "text-anchor": "middle", transform: `rotate(-90 10 ${((y0 + y1) / 2).toFixed(1)})` }));
    return y;
  }

  function legend(g, x, y, entries) {
    let cx = x;
    for (const [label, cls] of entries) {
      g.appendChild(svg("rect", { x: cx, y: y - 8, width: 10, height: 10, rx: 2, class: cls }));
      g.appendChild(text(cx + 14, y + 1, label, { class: "legend" }));
      cx += 14 + label.length * 6.2 + 12;
    }
  }

  function verdictChart(rows) {
    const keys = [["allow", "c-allow"], ["review", "c-review"], ["block", "c-block"]];
    const totals = rows.map((r) => keys.reduce((s, [k]) => s + (Number(r[k]) || 0), 0));
    if (!rows.length || totals.every((t) => t === 0)) return null;
    const W = 1200, H = 250, L = 52, R = 12, T = 30, B = 44;
    const c = newChart(W, H);
    const y = yAxis(c, { x0: L, x1: W - R, y0: H - B, y1: T, max: Math.max(...totals), title: "screenings" });
    const band = (W - L - R) / rows.length;
    const bw = Math.max(4, Math.min(36, band * 0.7));
    const labelEvery = rows.length > 16 ? Math.ceil(rows.length / 14) : 1;
    rows.forEach((r, i) => {
      const cx = L + band * i + band / 2;
      let acc = 0;
      const g = svg("g", { class: "bar-group" },
        svg("title", null, `${r.day}: allow ${r.allow || 0}, review ${r.review || 0}, block ${r.block || 0}`));
      for (const [k, cls] of keys) {
        const v = Number(r[k]) || 0;
        if (!v) continue;
        const yTop = y(acc + v), yBot = y(acc);
        g.appendChild(svg("rect", { x: (cx - bw / 2).toFixed(1), y: yTop.toFixed(1), width: bw.toFixed(1), height: Math.max(0.5, yBot - yTop).toFixed(1), class: cls }));
        acc += v;
      }
      if (totals[i]) g.appendChild(text(cx, y(totals[i]) - 3, fmtCount(totals[i]), { class: "value", "text-anchor": "middle" }));
      if (i % labelEvery === 0) g.appendChild(text(cx, H - B + 14, String(r.day || "").slice(5), { class: "tick", "text-anchor": "middle" }));
      c.appendChild(g);
    });
    c.appendChild(text(L + (W - L - R) / 2, H - 8, "day (MM-DD)", { class: "axis-title", "text-anchor": "middle" }));
    legend(c, L, 14, keys.map(([k, cls]) => [k, cls]));
    return c;
  }

  function queueAgeChart(rows) {
    const counts = rows.map((r) => Number(r.count) || 0);
    if (!rows.length || counts.every((n) => n === 0)) return null;
    const W = 560, H = 250, L = 46, R = 12, T = 20, B = 44;
    const c = newChart(W, H);
    const y = yAxis(c, { x0: L, x1: W - R, y0: H - B, y1: T, max: Math.max(...counts), title: "open items" });
    const band = (W - L - R) / rows.length;
    const bw = Math.min(48, band * 0.6);
    rows.forEach((r, i) => {
      const cx = L + band * i + band / 2;
      const v = counts[i];
      const g = svg("g", null, svg("title", null, `${r.bucket}: ${v}`));
      if (v) g.appendChild(svg("rect", { x: (cx - bw / 2).toFixed(1), y: y(v).toFixed(1), width: bw.toFixed(1), height: Math.max(0.5, y(0) - y(v)).toFixed(1), class: "c-age" }));
      g.appendChild(text(cx, y(v) - 4, fmtCount(v), { class: "value", "text-anchor": "middle" }));
      g.appendChild(text(cx, H - B + 14, String(r.bucket), { class: "tick", "text-anchor": "middle" }));
      c.appendChild(g);
    });
    c.appendChild(text(L + (W - L - R) / 2, H - 8, "age of open items", { class: "axis-title", "text-anchor": "middle" }));
    return c;
  }

  function decisionsChart(rows) {
    const keys = [["confirm", "c-confirm"], ["release", "c-release"], ["escalate", "c-escalate"]];
    const max = Math.max(0, ...rows.flatMap((r) => keys.map(([k]) => Number(r[k]) || 0)));
    if (!rows.length || max === 0) return null;
    const W = 560, H = 250, L = 46, R = 12, T = 30, B = 44;
    const c = newChart(W, H);
    const y = yAxis(c, { x0: L, x1: W - R, y0: H - B, y1: T, max, title: "decisions" });
    const band = (W - L - R) / rows.length;
    const groupW = Math.min(90, band * 0.8);
    const bw = groupW / keys.length;
    rows.forEach((r, i) => {
      const gx = L + band * i + (band - groupW) / 2;
      const g = svg("g", null, svg("title", null, `${r.reviewer}: confirm ${r.confirm || 0}, release ${r.release || 0}, escalate ${r.escalate || 0}`));
      keys.forEach(([k, cls], j) => {
        const v = Number(r[k]) || 0;
        const x = gx + j * bw;
        if (v) g.appendChild(svg("rect", { x: (x + 1).toFixed(1), y: y(v).toFixed(1), width: Math.max(1, bw - 2).toFixed(1), height: Math.max(0.5, y(0) - y(v)).toFixed(1), class: cls }));
        if (bw >= 14) g.appendChild(text(x + bw / 2, y(v) - 3, fmtCount(v), { class: "value small", "text-anchor": "middle" }));
      });
      const name = String(r.reviewer);
      const maxChars = Math.max(4, Math.floor(band / 6.5));
      g.appendChild(text(L + band * i + band / 2, H - B + 14, truncate(name, maxChars), { class: "tick", "text-anchor": "middle" }));
      c.appendChild(g);
    });
    c.appendChild(text(L + (W - L - R) / 2, H - 8, "reviewer", { class: "axis-title", "text-anchor": "middle" }));
    legend(c, L, 14, keys);
    return c;
  }

  function scoresChart(hists) {
    const rows = hists
      .map((h0) => ({ label: String(h0.label), bins: (h0.bins || []).map((n) => Number(n) || 0) }))
      .filter((r) => r.bins.some((n) => n > 0));
    if (!rows.length) return null;
    const cols = Math.min(5, rows.length);
    const CW = 240, CH = 130;
    const W = cols * CW, H = Math.ceil(rows.length / cols) * CH;
    const c = newChart(W, H);
    rows.forEach((r, i) => {
      const ox = (i % cols) * CW, oy = Math.floor(i / cols) * CH;
      const L = ox + 34, R = ox + CW - 14, T = oy + 26, B = oy + CH - 26;
      const max = Math.max(...r.bins);
      const g = svg("g", { class: "small-multiple", dataset: { label: r.label } },
        svg("title", null, `${r.label}: ${r.bins.map((n, b) => `[${(b / 10).toFixed(1)}, ${((b + 1) / 10).toFixed(1)}) ${n}`).join(", ")}`));
      g.appendChild(text(ox + 8, oy + 14, truncate(r.label, 34), { class: "sm-title" }));
      g.appendChild(svg("line", { x1: L, x2: R, y1: B, y2: B, class: "axis" }));
      g.appendChild(svg("line", { x1: L, x2: L, y1: T, y2: B, class: "axis" }));
      g.appendChild(text(L - 4, T + 4, fmtCount(max), { class: "tick", "text-anchor": "end" }));
      g.appendChild(text(L - 4, B, "0", { class: "tick", "text-anchor": "end" }));
      const n = r.bins.length || 10;
      const bw = (R - L) / n;
      r.bins.forEach((v, b) => {
        if (!v) return;
        const hh = Math.max(1, ((B - T) * v) / max);
        g.appendChild(svg("rect", { x: (L + b * bw + 0.5).toFixed(1), y: (B - hh).toFixed(1), width: Math.max(1, bw - 1).toFixed(1), height: hh.toFixed(1), class: b >= 5 ? "c-hist-hot" : "c-hist" }));
      });
      g.appendChild(text(L, B + 12, "0", { class: "tick", "text-anchor": "middle" }));
      g.appendChild(text((L + R) / 2, B + 12, "0.5", { class: "tick", "text-anchor": "middle" }));
      g.appendChild(text(R, B + 12, "1", { class: "tick", "text-anchor": "middle" }));
      g.appendChild(text((L + R) / 2, B + 22, "score", { class: "axis-title small", "text-anchor": "middle" }));
      c.appendChild(g);
    });
    return c;
  }

  // ---------------------------------------------------------------- audit

  async function renderAudit(seq) {
    const head = h("div.page-head", null, h("h1", null, "Audit log"),
      h("a#audit-export.button", { href: `${API}/audit/export`, download: "coverguard-audit.csv" }, "Export CSV"));
    if (state.user.role !== "admin") {
      setPage("Audit log", h("div.page-head", null, h("h1", null, "Audit log")));
      return showError(new UiError("The audit log is only available to admins."));
    }
    const p = new URLSearchParams(location.search);
    const actor = h("input#audit-actor", { name: "actor", type: "text", value: p.get("actor") || "", autocomplete: "off" });
    const action = h("input#audit-action", { name: "action", type: "text", value: p.get("action") || "", autocomplete: "off", placeholder: "e.g. image.reveal" });
    const form = h("form#audit-filters.filters", { role: "search", "aria-label": "Audit filters" },
      field("Actor", actor),
      field("Action", action),
      h("div.field.field-actions", null, h("button.primary", { type: "submit" }, "Filter"),
        h("button", { type: "button", onclick: () => navigate("/console/audit") }, "Reset")));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const q = new URLSearchParams();
      if (actor.value.trim()) q.set("actor", actor.value.trim());
      if (action.value.trim()) q.set("action", action.value.trim());
      if (p.get("limit")) q.set("limit", p.get("limit"));
      const s = q.toString();
      navigate("/console/audit" + (s ? "?" + s : ""));
    });

    const tbody = h("tbody");
    const table = h("table#audit-table.data", null,
      h("thead", null, h("tr", null, ["At", "Actor", "Action", "Subject", "Detail"].map((t) => h("th", { scope: "col" }, t)))),
      tbody);
    const summary = h("p.muted", null, "Loading…");
    setPage("Audit log", head, form, summary, h("div.table-wrap", null, table));

    const q = new URLSearchParams();
    for (const k of ["actor", "action", "limit"]) if (p.get(k)) q.set(k, p.get(k));
    const qs = q.toString();
    let data;
    try {
      data = await api("GET", `${API}/audit${qs ? "?" + qs : ""}`);
    } catch (e) {
      if (!isCurrent(seq)) return;
      summary.textContent = "Could not load the audit log.";
      return showError(e);
    }
    if (!isCurrent(seq)) return;
    const rows = (data && data.rows) || [];
    summary.textContent = rows.length ? `${rows.length} row${rows.length === 1 ? "" : "s"}, newest first` : "No audit rows match.";
    for (const r of rows) {
      const full = r.detail != null ? JSON.stringify(r.detail) : "";
      tbody.appendChild(h("tr", { dataset: { auditId: r.id } },
        h("td.nowrap", null, timeEl(r.at)),
        h("td", null, dash(r.actor)),
        h("td.mono", null, dash(r.action)),
        h("td.mono.small", null, subjectCell(r.subject, r.detail)),
        h("td.small", { title: full || null }, summarize(r.detail) || "–")));
    }
  }

  function subjectCell(subject, detail) {
    const s = subject == null || subject === "" ? "–" : String(subject);
    // Review rows are audited against their screening id; the detail names the review item.
    const rid = detail && typeof detail === "object" && detail.review_id != null ? String(detail.review_id) : null;
    return rid ? h("a", { href: `/console/items/${encodeURIComponent(rid)}`, title: `Review item ${rid}` }, s) : s;
  }

  // ---------------------------------------------------------------- boot

  async function boot() {
    document.addEventListener("click", onLinkClick);
    $("#error-close").addEventListener("click", clearError);
    window.addEventListener("popstate", route);
    try {
      const me = await api("GET", `${API}/me`, undefined, { redirectOn401: false });
      state.user = me.user;
      state.csrf = me.csrf_token;
    } catch (e) {
      if (e.status === 401) {
        state.user = null;
        state.csrf = null;
        goLogin(); // keeps the current URL as ?next=
        return;
      }
      setPage("Unavailable", h("h1", null, "Console unavailable"),
        h("p", null, h("button", { type: "button", onclick: () => location.reload() }, "Retry")));
      showError(e);
      return;
    }
    route();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
  else boot();
})();
