#!/usr/bin/env bash
# Photos without words from outside the scikit-image set, for the text gate's cost and
# false windows: the desktop backgrounds Debian packages (MATE, Plasma, GNOME), one file
# per picture (the largest of a Plasma wallpaper's sizes; no flat-colour VNC tiles, no
# second size of one picture). Usage: scripts/gate-photos/collect.sh OUT
# Installs the three packages with apt-get when they are missing (needs root).
set -euo pipefail
out="${1:?usage: collect.sh OUT}"
packages=(mate-backgrounds plasma-workspace-wallpapers gnome-backgrounds)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get install -y -q "${missing[@]}" >/dev/null
fi
mkdir -p "$out"
for d in /usr/share/wallpapers/*/contents/images; do
    name=$(basename "$(dirname "$(dirname "$d")")")
    largest=$(ls -S "$d"/* | head -n 1)
    cp "$largest" "$out/plasma-$name.${largest##*.}"
done
for f in /usr/share/backgrounds/mate/*/* /usr/share/backgrounds/gnome/*.webp; do
    case "$(basename "$f")" in
        vnc-*|Elephants_*) continue ;;
    esac
    cp "$f" "$out/$(basename "$(dirname "$f")")-$(basename "$f")"
done
for p in "${packages[@]}"; do
    dpkg-query -W -f '${Package} ${Version}\n' "$p"
done > "$out/PACKAGES"
echo "$(ls "$out" | grep -vc PACKAGES) photos in $out" >&2
