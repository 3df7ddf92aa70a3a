#!/usr/bin/env bash
# Rebuild repro/plots-template.html: DVC's plots page with vega, vega-lite and vega-embed inlined,
# so that `dvc plots show|diff` render offline. Needs npm (the npm registry) once.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack --silent vega@5.30.0 vega-lite@5.21.0 vega-embed@6.26.0 >/dev/null
for f in *.tgz; do mkdir "${f%.tgz}" && tar xzf "$f" -C "${f%.tgz}"; done
python3 - "$root/repro/plots-template.html" <<'PY'
import sys
from pathlib import Path
parts = [("vega", "5.30.0", "vega-5.30.0/package/build/vega.min.js"),
         ("vega-lite", "5.21.0", "vega-lite-5.21.0/package/build/vega-lite.min.js"),
         ("vega-embed", "6.26.0", "vega-embed-6.26.0/package/build/vega-embed.min.js")]
scripts = "\n".join(
    f"<script>/* {n} {v} (BSD-3-Clause, University of Washington Interactive Data Lab), inlined so the page renders offline */\n"
    + Path(p).read_text().replace("</script", "<\\/script") + "\n</script>" for n, v, p in parts)
head = Path(sys.argv[1]).read_text().split("<html>", 1)[0]
Path(sys.argv[1]).write_text(head + "<html>\n<head>\n    {refresh_tag}\n    <meta charset=\"utf-8\">\n"
    "    <title>codemem plots</title>\n    " + scripts + "\n    <style>table { border-spacing: 15px; }</style>\n"
    "</head>\n<body>\n    {plot_divs}\n</body>\n</html>\n")
PY
echo "wrote $root/repro/plots-template.html"
