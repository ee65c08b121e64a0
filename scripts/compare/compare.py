#!/usr/bin/env python3
"""coverguard against the Python stack, on the same files, in the same run.

Run through scripts/compare/run.sh, which builds coverguard and the venv.

Corpus: the scikit-image photos from the pinned wheel that coverguard provisions
(`coverguard models fetch --test-data`), the tiny test patterns left out, each
re-encoded as JPEG q90 with its longest side at 640 and at 3000 px, as is and
mirrored.

Python stack, one image after another, as a worker would run it:
  NudeNet 3.4.2 `NudeDetector(320n.onnx).detect(path)` (ONNX Runtime 1.32),
  python-threatexchange `pdq_from_file` (Pillow + Meta's PDQ through pdqhash),
  its `PDQIndex` (faiss multi-index hashing, threshold 31) over the bank, and an
  MD5 set lookup.
coverguard: `coverguard serve` on loopback with the same bank imported, fed by
  HTTP clients on this machine (their cost is counted against coverguard).
  Every request's bytes carry a unique JPEG comment so that no answer comes from
  the verdict cache.

Printed: images/s of each and the ratio, per size; bare ONNX Runtime; PDQ alone
(coverguard's `stage_times` example against `pdqhash.compute_dihedral` on the
same decoded files); the latency of one request at a time on an idle server;
a saturating load (status counts, throughput, peak RSS). Rounds alternate
between the two stacks and medians are reported.

`scan` against `serve` on one folder of `--scan-files` copies of the corpus (each
copy new bytes: a JPEG comment), per size: `coverguard scan --json --bank` timed as a
whole process (start-up and the bank file's load included), alternating with the same
files POSTed to a running `serve` (8 clients, started and loaded beforehand), next to
NudeNet alone and the Python stack on the corpus. `--only-scan` runs just that part.

OCR: `serve` without OCR, with the gated OCR and with OCR on every image, on the 640 px
photos without words and on the OCR fixture's covers with text (JPEG q90): images/s,
the server's CPU per image and the idle latency. The three serve at once and are
measured in turn within each round; each CPU ratio is taken within one round, and the
median and range of `--rounds` of them are printed. `--only-ocr` runs just that part.

`--previous BINARY`: this binary against an earlier build of coverguard, and nothing
else. Both serve at once (default configuration, the bank loaded), and each round
measures one after the other, first one then the other in turn: images/s at each size,
the idle latency at 640 px, and `scan` as a whole process on the 640 px folder.
Printed: medians and this binary's ratio to the previous one's.
"""

import argparse
import concurrent.futures as futures
import hashlib
import http.client
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pdqhash
from nudenet import NudeDetector
from PIL import Image
from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_file
from threatexchange.signal_type.pdq.pdq_index import PDQIndex

SERVICE_TOKEN = "compare-service-token-0123456789abcdef"
ADMIN_TOKEN = "compare-admin-token-0123456789abcdef"


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def provisioned(binary):
    out = subprocess.run(
        [binary, "models", "fetch", "--test-data"], check=True, capture_output=True, text=True
    ).stdout
    paths = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return Path(paths["model"].strip()), Path(paths["test data"].strip()) / "skimage" / "data"


def build_corpus(photos, side, out_dir):
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for src in sorted(photos.iterdir()):
        if src.suffix not in (".png", ".jpg"):
            continue
        image = Image.open(src).convert("RGB")
        if min(image.size) < 128:
            continue
        scale = side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        resized = image.resize(size, Image.Resampling.BILINEAR)
        for variant, picture in (("", resized), ("-mirrored", resized.transpose(Image.Transpose.FLIP_LEFT_RIGHT))):
            path = out_dir / f"{src.stem}{variant}.jpg"
            picture.save(path, "JPEG", quality=90)
            files.append(path)
    return files


def random_bank(size, seed=6):
    rng = random.Random(seed)
    return [f"{rng.getrandbits(256):064x}" for _ in range(size)]


def with_comment(jpeg, nonce):
    """The same pixels under new bytes: a COM segment right after SOI."""
    payload = nonce.encode()
    return jpeg[:2] + b"\xff\xfe" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:]


# ---------------------------------------------------------------- Python stack


class PythonStack:
    def __init__(self, model, bank):
        self.detector = NudeDetector(model_path=str(model))
        self.index = PDQIndex(entries=((h, i) for i, h in enumerate(bank)))
        self.md5s = set()

    def screen(self, path):
        detections = self.detector.detect(str(path))
        pdq_hex, _quality = pdq_from_file(path)
        matches = self.index.query(pdq_hex)
        md5_hit = hashlib.md5(path.read_bytes()).hexdigest() in self.md5s
        return detections, matches, md5_hit

    def images_per_second(self, files):
        start = time.perf_counter()
        for path in files:
            self.screen(path)
        return len(files) / (time.perf_counter() - start)


def python_pdq_ms(files, rounds=3):
    best = []
    for path in files:
        array = np.asarray(Image.open(path).convert("RGB"))
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            pdqhash.compute_dihedral(array)
            times.append((time.perf_counter() - start) * 1e3)
        best.append(min(times))
    return statistics.median(best)


def bare_inference_ms(model, batch, runs=40):
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    data = np.random.default_rng(6).random((batch, 3, 320, 320), dtype=np.float32)
    for _ in range(3):
        session.run(None, {name: data})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, {name: data})
        times.append((time.perf_counter() - start) * 1e3 / batch)
    return statistics.median(times)


# ------------------------------------------------------------------ coverguard


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, work, workers, intra_threads, decode, queue_capacity, pin=False, ocr=None):
        self.port = free_port()
        # None: no OCR; "gated" or "every image": [ocr] enabled, with the gate or without.
        ocr_section = "" if ocr is None else (
            f"\n[ocr]\nenabled = true\ngate = {str(ocr == 'gated').lower()}\n"
        )
        self.dir = Path(tempfile.mkdtemp(dir=work, prefix="server-"))
        config = self.dir / "coverguard.toml"
        config.write_text(
            f"""listen = "127.0.0.1:{self.port}"
data_dir = "{self.dir / 'data'}"
intra_threads = {intra_threads}
decode_resolution = {decode}
request_deadline_ms = 60000

[scheduler]
workers = {workers}
pin_workers = {str(pin).lower()}
max_batch = 8
queue_capacity = {queue_capacity}

[[tokens]]
name = "compare-service"
role = "service"
token = "{SERVICE_TOKEN}"

[[tokens]]
name = "compare-admin"
role = "admin"
token = "{ADMIN_TOKEN}"
{ocr_section}"""
        )
        self.log = open(self.dir / "server.log", "w")
        self.process = subprocess.Popen(
            [binary, "serve", "--config", str(config)], stdout=self.log, stderr=self.log
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"coverguard serve exited; see {self.dir / 'server.log'}")
            time.sleep(0.2)
        raise RuntimeError("coverguard serve did not become ready in 120 s")

    def request(self, method, path, body=None, token=SERVICE_TOKEN, content_type="image/jpeg"):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            headers = {"Authorization": f"Bearer {token}"}
            if body is not None:
                headers["Content-Type"] = content_type
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def load_bank(self, bank, chunk=200_000):
        body = json.dumps({"name": "compare", "signal_types": ["pdq", "md5"], "pdq_threshold": 31})
        status, answer = self.request("POST", "/v1/banks", body, ADMIN_TOKEN, "application/json")
        if status not in (200, 201):
            raise RuntimeError(f"bank creation answered {status}: {answer[:300]!r}")
        for start in range(0, len(bank), chunk):
            text = "".join(f"pdq {h} e{start + i}\n" for i, h in enumerate(bank[start:start + chunk]))
            status, answer = self.request(
                "POST", "/v1/banks/compare/import", text.encode(), ADMIN_TOKEN, "text/plain"
            )
            if status != 200:
                raise RuntimeError(f"bank import answered {status}: {answer[:300]!r}")

    def screen(self, jpeg, artwork):
        """One upload screening; each artwork id is new, as each upload's would be."""
        start = time.perf_counter()
        status, answer = self.request("POST", f"/v1/screen?artwork_id={artwork}&owner_id=compare", jpeg)
        return status, time.perf_counter() - start, answer

    def memory_mib(self, field):
        """VmHWM (peak resident) or VmRSS (resident now) of the server, in MiB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self):
        """User and system CPU time the server has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def reset_peak_rss(self):
        """Start VmHWM afresh (Linux: writing 5 to clear_refs), so the bank load's peak
        does not hide the load's."""
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=60)
        self.log.close()


class Nonces:
    def __init__(self):
        self.lock = threading.Lock()
        self.next = 0

    def take(self):
        with self.lock:
            self.next += 1
            return f"compare-{os.getpid()}-{self.next}"


def nonced(jpeg, nonces):
    """New bytes (so no answer comes from the verdict cache) and the nonce as artwork id."""
    nonce = nonces.take()
    return with_comment(jpeg, nonce), nonce


def coverguard_images_per_second(server, payloads, nonces, concurrency, read=lambda p: p):
    """`payloads` (or files, with `read=Path.read_bytes`, read as they are sent) POSTed
    by `concurrency` clients."""
    def one(payload):
        status, _, answer = server.screen(*nonced(read(payload), nonces))
        if status != 200:
            raise RuntimeError(f"screening answered {status}: {answer[:300]!r}")

    start = time.perf_counter()
    with futures.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, payloads))
    return len(payloads) / (time.perf_counter() - start)


def idle_latencies_ms(server, payloads, nonces, count):
    return latency_summary(idle_requests_ms(server, payloads, nonces, count))


def idle_requests_ms(server, payloads, nonces, count):
    """The latency of each of `count` requests sent one at a time."""
    latencies = []
    for i in range(count):
        status, seconds, answer = server.screen(*nonced(payloads[i % len(payloads)], nonces))
        if status != 200:
            raise RuntimeError(f"screening answered {status}: {answer[:300]!r}")
        latencies.append(seconds * 1e3)
    return latencies


def latency_summary(latencies):
    latencies = sorted(latencies)
    return {
        "requests": len(latencies),
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "max_ms": latencies[-1],
    }


WRK_SCRIPT = r"""
-- Written by compare.py: POSTs the corpus files round-robin, each under new bytes
-- (a JPEG comment with a per-thread counter), and counts answers by status.
-- Globals, so that done() can read each thread's counters with thread:get().
bodies, count, ok, refused, other, owed = {}, 0, 0, 0, 0, 0
threads = {}
-- After a 429, the next request waits this long, as a client honouring Retry-After
-- would (0: a flood that retries at once).
backoff_ms = BACKOFF_MS

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  for _, path in ipairs(args) do
    local f = assert(io.open(path, "rb"))
    table.insert(bodies, f:read("*a"))
    f:close()
  end
end

function request()
  count = count + 1
  local body = bodies[(count % #bodies) + 1]
  local nonce = "wrk-RUN-" .. id .. "-" .. count
  local len = #nonce + 2
  body = body:sub(1, 2) .. "\255\254" .. string.char(math.floor(len / 256), len % 256) .. nonce .. body:sub(3)
  return wrk.format("POST", "/v1/screen?owner_id=wrk&artwork_id=" .. nonce, {
    ["Authorization"] = "Bearer TOKEN",
    ["Content-Type"] = "image/jpeg",
  }, body)
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1
  elseif status == 429 then refused = refused + 1; owed = owed + 1
  else other = other + 1 end
end

function delay()
  if owed > 0 and backoff_ms > 0 then
    owed = owed - 1
    return backoff_ms
  end
  return 0
end

function done(summary, latency, requests)
  local t = {ok = 0, refused = 0, other = 0}
  for _, thread in ipairs(threads) do
    t.ok = t.ok + thread:get("ok")
    t.refused = t.refused + thread:get("refused")
    t.other = t.other + thread:get("other")
  end
  io.write(string.format('WRK {"200": %d, "429": %d, "other": %d, "socket_errors": %d}\n',
    t.ok, t.refused, t.other,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def saturating_load_wrk(server, files, work, concurrency, seconds, backoff_ms):
    """wrk (C, keep-alive connections) as the load generator. With `backoff_ms` a
    connection waits that long after a 429 (clients honouring Retry-After); with 0 it
    retries at once, a flood bounded only by how fast refusals come back."""
    script = work / "load.lua"
    script.write_text(
        WRK_SCRIPT.replace("TOKEN", SERVICE_TOKEN)
        .replace("BACKOFF_MS", str(backoff_ms))
        # Each run's bytes are new, or a later run would be answered from the verdict cache.
        .replace("RUN", str(time.time_ns()))
    )
    rss_before = server.memory_mib("VmRSS")
    server.reset_peak_rss()
    start = time.perf_counter()
    out = subprocess.run(
        ["wrk", "-t2", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "30s", "-s", str(script),
         f"http://127.0.0.1:{server.port}/", "--", *map(str, files)],
        capture_output=True, text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
    out = out.stdout
    elapsed = time.perf_counter() - start
    counts = json.loads(next(line[4:] for line in out.splitlines() if line.startswith("WRK ")))
    return {
        "generator": f"wrk, {backoff_ms} ms back-off after a 429",
        "clients": concurrency,
        "seconds": round(elapsed, 1),
        "status_counts": counts,
        "answered_200_per_second": counts["200"] / elapsed,
        "rss_before_mib": rss_before,
        "peak_rss_mib": server.memory_mib("VmHWM"),
        "rss_after_mib": server.memory_mib("VmRSS"),
    }


# ------------------------------------------------------------ scan vs serve


def build_scan_folder(files, count, out_dir):
    """`count` files cycling through `files`, each under new bytes (a JPEG comment),
    so that the folder is `count` distinct inputs of the corpus's pixels."""
    if out_dir.is_dir() and len(list(out_dir.iterdir())) == count:
        return sorted(out_dir.iterdir())
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    payloads = [(p.stem, p.read_bytes()) for p in files]
    paths = []
    for i in range(count):
        stem, jpeg = payloads[i % len(payloads)]
        path = out_dir / f"{i:05}-{stem}.jpg"
        path.write_bytes(with_comment(jpeg, f"scan-copy-{i}"))
        paths.append(path)
    return paths


def write_bank_file(bank, path):
    with open(path, "w") as out:
        for i, h in enumerate(bank):
            out.write(f"pdq {h} e{i}\n")
    return path


def scan_run(binary, folder, bank_file, count):
    """One whole `coverguard scan` process: wall seconds and peak RSS (MiB). Every input
    must be screened: one JSON line each, exit status 0 or 1 (2 means an input failed)."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [binary, "scan", "--json", "--bank", str(bank_file), str(folder)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    lines = sum(1 for _ in process.stdout)
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1) or lines != count:
        raise RuntimeError(f"scan exited {code} with {lines} of {count} lines: {stderr[-600:]!r}")
    return seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def nudenet_alone_images_per_second(detector, files):
    start = time.perf_counter()
    for path in files:
        detector.detect(str(path))
    return len(files) / (time.perf_counter() - start)


def scan_against_serve(args, work, corpus, bank, stack, nonces, results):
    bank_file = write_bank_file(bank, work / "bank.txt")
    for side, files in corpus.items():
        folder = build_scan_folder(files, args.scan_files, work / f"scan-{side}")
        log(f"scan against serve: {len(folder)} files at {side} px")
        entry = {"files": len(folder), "scan": [], "scan_peak_rss_mib": [], "serve": [],
                 "nudenet_alone": [], "python_stack": [], "scan_cpu_ms": [], "serve_cpu_ms": []}
        server = Server(args.coverguard, work, 2, 1, '"full"', 64)
        try:
            server.load_bank(bank)
            for _ in range(args.rounds):
                cpu = server.cpu_seconds()
                entry["serve"].append(
                    coverguard_images_per_second(server, folder, nonces, args.concurrency, Path.read_bytes)
                )
                entry["serve_cpu_ms"].append((server.cpu_seconds() - cpu) * 1e3 / len(folder))
                seconds, rss, cpu = scan_run(args.coverguard, folder[0].parent, bank_file, len(folder))
                entry["scan"].append(len(folder) / seconds)
                entry["scan_peak_rss_mib"].append(rss)
                entry["scan_cpu_ms"].append(cpu * 1e3 / len(folder))
                entry["nudenet_alone"].append(nudenet_alone_images_per_second(stack.detector, files))
                entry["python_stack"].append(stack.images_per_second(files))
        finally:
            server.stop()
        results.setdefault("scan_vs_serve", {})[str(side)] = entry


def against_previous(args, work, corpus, bank, nonces, results):
    """This binary against `--previous`, both serving, measured in alternation."""
    binaries = {"previous": args.previous, "this": args.coverguard}
    servers = {}
    entry = results["against_previous"] = {"serve": {}, "idle_640_p50_ms": {}, "scan_640": {}}
    bank_file = write_bank_file(bank, work / "bank.txt")
    folder = build_scan_folder(corpus[640], min(args.scan_files, 200), work / "scan-previous-640")
    try:
        for label, binary in binaries.items():
            log(f"{label}: {binary}")
            servers[label] = Server(binary, work, 2, 1, '"full"', 64)
            servers[label].load_bank(bank)
        for round_ in range(args.rounds):
            # Who goes first alternates, so a drift of the machine within a round
            # falls on both.
            order = list(binaries) if round_ % 2 == 0 else list(reversed(binaries))
            for label in order:
                server = servers[label]
                for side, files in corpus.items():
                    payloads = [p.read_bytes() for p in files]
                    entry["serve"].setdefault(str(side), {}).setdefault(label, []).append(
                        coverguard_images_per_second(server, payloads, nonces, args.concurrency)
                    )
                idle = idle_latencies_ms(
                    server, [p.read_bytes() for p in corpus[640]], nonces, args.idle_requests
                )
                entry["idle_640_p50_ms"].setdefault(label, []).append(idle["p50_ms"])
                seconds, _, _ = scan_run(binaries[label], folder[0].parent, bank_file, len(folder))
                entry["scan_640"].setdefault(label, []).append(len(folder) / seconds)
            log(f"round {round_ + 1} of {args.rounds} done")
    finally:
        for server in servers.values():
            server.stop()


def report_previous(results):
    entry = results["against_previous"]
    print("this binary against the previous one, medians of rounds run in alternation:")
    rows = [(f"serve {side} px, images/s", by) for side, by in entry["serve"].items()]
    rows += [("idle p50 at 640 px, ms", entry["idle_640_p50_ms"]), ("scan 640 px, images/s", entry["scan_640"])]
    for label, by in rows:
        previous, this = statistics.median(by["previous"]), statistics.median(by["this"])
        print(f"  {label:<28} previous {previous:>8.1f}  this {this:>8.1f}  this/previous {this / previous:.3f}")


def serve_configurations(args, work, corpus, bank, stack, nonces, results):
    """`serve` in each configuration on the corpus, the saturating loads, PDQ alone."""
    full, fast = '"full"', "{ long_side_at_least = 1024 }"
    configurations = {
        "1 session x 2 threads": (1, 2, full),
        "2 sessions x 1 thread": (2, 1, full),
        "2 x 1, fast decode": (2, 1, fast),
        "2 x 1, pinned": (2, 1, full, True),
    }
    for label, (workers, threads, decode, *pin) in configurations.items():
        log(f"coverguard: {label}")
        server = Server(args.coverguard, work, workers, threads, decode, 64, *pin)
        try:
            server.load_bank(bank)
            for side, files in corpus.items():
                payloads = [p.read_bytes() for p in files]
                entry = results["sizes"].setdefault(str(side), {"files": len(files), "coverguard": {}})
                coverguard_rounds, python_rounds = [], entry.setdefault("python_rounds", [])
                for _ in range(args.rounds):
                    coverguard_rounds.append(
                        coverguard_images_per_second(server, payloads, nonces, args.concurrency)
                    )
                    if len(python_rounds) < args.rounds:
                        python_rounds.append(stack.images_per_second(files))
                entry["coverguard"][label] = coverguard_rounds
            results.setdefault("idle_640", {})[label] = idle_latencies_ms(
                server, [p.read_bytes() for p in corpus[640]], nonces, args.idle_requests
            )
        finally:
            server.stop()

    log("saturating load")
    # The loads run on the default configuration.
    workers, threads, decode, *pin = configurations["2 sessions x 1 thread"]
    server = Server(args.coverguard, work, workers, threads, decode, 64, *pin)
    try:
        server.load_bank(bank)
        results["load_640"] = saturating_load_wrk(
            server, corpus[640], work, args.load_clients, args.load_seconds, 1000
        )
        results["flood_640"] = saturating_load_wrk(
            server, corpus[640], work, args.load_clients, args.load_seconds, 0
        )
    finally:
        server.stop()

    for side, files in corpus.items():
        out = subprocess.run(
            [args.stage_times, str(work / f"corpus-{side}")], check=True, capture_output=True, text=True
        ).stdout
        results["sizes"][str(side)]["pdq_ms"] = {
            "coverguard": json.loads(out)["pdq_ms"],
            "pdqhash_dihedral": python_pdq_ms(files),
        }


# The scikit-image photos with words in them (badges, legends, numbers, squares): the
# rest are the OCR runs' covers without text.
PHOTOS_WITH_TEXT = {
    "text", "page", "logo", "motorcycle_left", "motorcycle_right", "clock_motion", "coins",
    "chessboard_GRAY", "chessboard_RGB",
}


def text_corpus(fixtures, out_dir):
    """The OCR fixture's covers with text (text-*.png), as JPEG q90."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for src in sorted(fixtures.glob("text-*.png")):
        path = out_dir / f"{src.stem}.jpg"
        Image.open(src).convert("RGB").save(path, "JPEG", quality=90)
        files.append(path)
    return files


def ocr_configurations(args, work, corpus, nonces, results):
    """`serve` (2 sessions x 1 thread) without OCR, with the gated OCR and with OCR on
    every image: throughput, idle latency and the server's CPU per image, on the 640 px
    photos without text and on covers with text. The three serve at once and each round
    measures them one after another, the first of a round rotating, so that the machine's
    drift falls on all three; CPU ratios are taken within a round."""
    sets = {
        "no text (640 px photos)": [
            p.read_bytes() for p in corpus[640] if p.stem.removesuffix("-mirrored") not in PHOTOS_WITH_TEXT
        ],
        "text (fixture covers)": [
            p.read_bytes() for p in text_corpus(Path("tests/fixtures/ocr"), work / "corpus-text")
        ],
    }
    configurations = {"no OCR": None, "OCR, gated": "gated", "OCR, every image": "every image"}
    labels = list(configurations)
    # The idle requests of a configuration and set, spread over the rounds.
    idle_each = max(1, args.idle_requests // 3 // args.rounds)
    out = results.setdefault("ocr", {})
    servers = {}
    try:
        for label, ocr in configurations.items():
            log(f"coverguard: {label}")
            servers[label] = Server(args.coverguard, work, 2, 1, '"full"', 64, ocr=ocr)
        for round_ in range(args.rounds):
            first = round_ % len(labels)
            for label in labels[first:] + labels[:first]:
                server = servers[label]
                for name, payloads in sets.items():
                    entry = out.setdefault(label, {}).setdefault(
                        name,
                        {"files": len(payloads), "images_per_second": [], "cpu_ms_per_image": [], "idle_ms": []},
                    )
                    before = server.cpu_seconds()
                    entry["images_per_second"].append(
                        coverguard_images_per_second(server, payloads, nonces, args.concurrency)
                    )
                    entry["cpu_ms_per_image"].append((server.cpu_seconds() - before) * 1e3 / len(payloads))
                    entry["idle_ms"] += idle_requests_ms(server, payloads, nonces, idle_each)
            log(f"round {round_ + 1} of {args.rounds} done")
    finally:
        for server in servers.values():
            server.stop()
    for entry in out.values():
        for run in entry.values():
            run["idle"] = latency_summary(run.pop("idle_ms"))


def report_ocr(results):
    print()
    print("OCR: serve (2 x 1) without OCR, gated and on every image, serving at once, rounds in turn;")
    print("medians of rounds, and the CPU against no OCR in the same round (median, range)")
    print("configuration      images                      files   img/s  CPU ms/img  idle p50 ms  p99 ms  CPU of no OCR")
    base = results["ocr"]["no OCR"]
    for label, entry in results["ocr"].items():
        for name, run in entry.items():
            cpu = run["cpu_ms_per_image"]
            ratios = [c / b for c, b in zip(cpu, base[name]["cpu_ms_per_image"])]
            print(
                f"{label:<18} {name:<26} {run['files']:>5}  {statistics.median(run['images_per_second']):>6.1f}"
                f"  {statistics.median(cpu):>10.1f}  {run['idle']['p50_ms']:>11.1f}  {run['idle']['p99_ms']:>6.1f}"
                f"  {statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
            )
    for label, entry in results["ocr"].items():
        if label == "no OCR":
            continue
        text, plain = entry["text (fixture covers)"]["idle"], entry["no text (640 px photos)"]["idle"]
        print(f"{label}: idle p50 with text / without: {text['p50_ms'] / plain['p50_ms']:.2f}x")


# ------------------------------------------------------------------------ main


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--coverguard", required=True, help="the release binary")
    parser.add_argument("--stage-times", required=True, help="the stage_times example binary")
    parser.add_argument("--work", default="target/compare", help="corpus, bank and server data")
    parser.add_argument("--bank-size", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8, help="clients in the throughput runs")
    parser.add_argument("--idle-requests", type=int, default=300)
    parser.add_argument("--load-clients", type=int, default=160)
    parser.add_argument("--load-seconds", type=int, default=60)
    parser.add_argument("--scan-files", type=int, default=1000, help="files in the scan-vs-serve folder")
    parser.add_argument("--only-scan", action="store_true", help="run only scan against serve")
    parser.add_argument("--only-ocr", action="store_true", help="run only the OCR configurations")
    parser.add_argument("--previous", help="an earlier coverguard release binary: compare with it alone")
    args = parser.parse_args()
    # Python threads as the load generator cost the two cores more than the server's
    # refusals do, so the loads need wrk; say so before ten minutes of other runs.
    if not (args.only_scan or args.only_ocr or args.previous) and not shutil.which("wrk"):
        parser.error("the load runs need wrk (Debian: apt-get install wrk)")

    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    model, photos = provisioned(args.coverguard)
    corpus = {side: build_corpus(photos, side, work / f"corpus-{side}") for side in (640, 3000)}
    bank = random_bank(args.bank_size)
    results = {"machine": {"cpus": os.cpu_count()}, "bank_size": len(bank), "sizes": {}}

    if args.previous:
        against_previous(args, work, corpus, bank, Nonces(), results)
        (work / "results-previous.json").write_text(json.dumps(results, indent=2))
        report_previous(results)
        return
    if args.only_ocr:
        ocr_configurations(args, work, corpus, Nonces(), results)
        (work / "results.json").write_text(json.dumps(results, indent=2))
        report_ocr(results)
        return
    log(f"building the Python stack (PDQIndex over {len(bank)} hashes)")
    stack = PythonStack(model, bank)
    results["bare_inference_ms"] = {str(b): bare_inference_ms(model, b) for b in (1, 8)}

    nonces = Nonces()
    if not args.only_scan:
        serve_configurations(args, work, corpus, bank, stack, nonces, results)
    scan_against_serve(args, work, corpus, bank, stack, nonces, results)
    if not args.only_scan:
        ocr_configurations(args, work, corpus, nonces, results)

    (work / "results.json").write_text(json.dumps(results, indent=2))
    report(results)


def report(results):
    bare = results["bare_inference_ms"]
    bare_rate = 1e3 / min(bare.values())
    print(f"bank: {results['bank_size']} random PDQ hashes; {results['machine']['cpus']} CPUs")
    print(f"bare ONNX Runtime, 320x320 fp32: batch 1 {bare['1']:.1f} ms, batch 8 {bare['8']:.1f} ms per image")
    if results["sizes"]:
        report_serve(results, bare_rate)
    if "scan_vs_serve" in results:
        report_scan(results, bare_rate)
    if "ocr" in results:
        report_ocr(results)


def report_serve(results, bare_rate):
    print()
    print("size     files  Python img/s  coverguard img/s (configuration)      ratio  of bare inference")
    for side, entry in results["sizes"].items():
        python = statistics.median(entry["python_rounds"])
        for label, rounds in entry["coverguard"].items():
            rate = statistics.median(rounds)
            print(
                f"{side + ' px':<8} {entry['files']:>5}  {python:>12.1f}  {rate:>16.1f} ({label:<22})"
                f"  {rate / python:>5.2f}x  {rate / bare_rate:>6.0%}"
            )
    print()
    print("PDQ with dihedral hashes, per image (decoded pixels in, median of per-file best of 3):")
    for side, entry in results["sizes"].items():
        pdq = entry["pdq_ms"]
        print(
            f"  {side} px: coverguard {pdq['coverguard']:.2f} ms, pdqhash {pdq['pdqhash_dihedral']:.2f} ms"
            f" ({pdq['pdqhash_dihedral'] / pdq['coverguard']:.1f}x)"
        )
    print()
    for label, idle in results["idle_640"].items():
        print(
            f"one request at a time, 640 px ({label}): p50 {idle['p50_ms']:.1f} ms, "
            f"p99 {idle['p99_ms']:.1f} ms, max {idle['max_ms']:.1f} ms over {idle['requests']}"
        )
    for key in ("load_640", "flood_640"):
        load = results[key]
        print(
            f"{'saturating load' if key == 'load_640' else 'flood'}, 640 px ({load['generator']}): "
            f"{load['clients']} clients for {load['seconds']} s: statuses {load['status_counts']}, "
            f"{load['answered_200_per_second']:.1f} answered/s; RSS {load['rss_before_mib']:.0f} MiB "
            f"before, peak {load['peak_rss_mib']:.0f} MiB, {load['rss_after_mib']:.0f} MiB after"
        )


def report_scan(results, bare_rate):
    print()
    print("scan (whole process) against serve (2 x 1, full decode), same folder, images/s:")
    print("size     files    scan   serve  scan/serve  NudeNet alone  Python stack  scan/bare batch 8  scan peak RSS")
    for side, entry in results["scan_vs_serve"].items():
        scan, serve = statistics.median(entry["scan"]), statistics.median(entry["serve"])
        nudenet, python = statistics.median(entry["nudenet_alone"]), statistics.median(entry["python_stack"])
        print(
            f"{side + ' px':<8} {entry['files']:>5}  {scan:>6.1f}  {serve:>6.1f}  {scan / serve:>10.0%}"
            f"  {nudenet:>6.1f} ({scan / nudenet:.2f}x)  {python:>5.1f} ({scan / python:.2f}x)"
            f"  {scan / bare_rate:>17.0%}  {max(entry['scan_peak_rss_mib']):>9.0f} MiB"
        )
    print("CPU per image (user + system, the process alone; serve's clients not counted):")
    for side, entry in results["scan_vs_serve"].items():
        print(
            f"  {side} px: scan {statistics.median(entry['scan_cpu_ms']):.1f} ms (start-up included),"
            f" serve {statistics.median(entry['serve_cpu_ms']):.1f} ms"
        )


if __name__ == "__main__":
    main()
