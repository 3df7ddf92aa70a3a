"""Test material: look-alike dataset archives cut from real Java sources, and a local HTTP server.

The real hosts are unreachable from test machines, so tests build archives in the published layout
(`java-small/{training,validation,test}/<project>/...`) from the JDK's own sources and serve them
from 127.0.0.1 with the failures a real download meets: a connection cut mid-transfer, a server
that ignores Range, wrong bytes, 403 / 404 / 5xx and silence.
"""

from __future__ import annotations

import http.server
import io
import shutil
import sysconfig
import tarfile
import threading
import time
import zipfile
from pathlib import Path

# Projects of a look-alike archive: folder -> project -> JDK package prefixes (a few dozen files).
SMALL_LAYOUT = {
    "training": {"util-project": ["java.base/java/util/AbstractMap", "java.base/java/util/Hashtable",
                                  "java.base/java/util/Vector", "java.base/java/util/Optional"],
                 "io-project": ["java.base/java/io/File.java", "java.base/java/io/StringWriter",
                                "java.base/java/io/CharArrayWriter"]},
    "validation": {"net-project": ["java.base/java/net/URI.java", "java.base/java/net/InetSocketAddress"]},
    "test": {"text-project": ["java.base/java/text/ChoiceFormat", "java.base/java/text/DecimalFormatSymbols",
                              "java.base/java/text/FieldPosition"]},
}  # fmt: skip


def java_archive(src_zip: Path, out: Path, root: str = "java-small", layout: dict = SMALL_LAYOUT) -> dict:
    """Write `out` (tar.gz) with each project's JDK files under `<root>/<folder>/<project>/`; return
    the member count per folder."""
    counts = {}
    with zipfile.ZipFile(src_zip) as z, tarfile.open(out, "w:gz") as tar:
        names = sorted(n for n in z.namelist() if n.endswith(".java"))
        for folder, projects in layout.items():
            counts[folder] = 0
            for project, prefixes in projects.items():
                for name in names:
                    if name.startswith(tuple(prefixes)):
                        data = z.read(name)
                        info = tarfile.TarInfo(f"{root}/{folder}/{project}/src/{name.split('/', 1)[1]}")
                        info.size, info.mtime = len(data), 1_600_000_000
                        tar.addfile(info, io.BytesIO(data))
                        counts[folder] += 1
    return counts


class Server:
    """Files served from memory on 127.0.0.1 with HTTP Range, and scripted failures.

    `cut[path] = n`: the next response for path stops after n body bytes (then the connection closes);
    `cut_every[path] = n`: every response for path does (a flaky line: each attempt brings n bytes);
    `fail[path] = [code, ...]`: the next responses are these status codes (None: the file); `ignore_range`: answer every
    request with the whole file; `stall`: seconds to wait before answering. `requests` logs
    (path, Range header) of every request."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cut: dict[str, int] = {}
        self.cut_every: dict[str, int] = {}
        self.fail: dict[str, list[int]] = {}
        self.ignore_range = False
        self.stall = 0.0
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path = self.path.split("?")[0]
                server.requests.append((path, self.headers.get("Range")))
                if server.stall:
                    time.sleep(server.stall)
                if server.fail.get(path) and (code := server.fail[path].pop(0)) is not None:  # None: serve it
                    self.send_error(code)
                    return
                if path not in server.files:
                    self.send_error(404)
                    return
                data, start = server.files[path], 0
                rng = self.headers.get("Range")
                if rng and not server.ignore_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                body = data[start:]
                if path in server.cut or path in server.cut_every:
                    body = body[: server.cut.pop(path, None) or server.cut_every[path]]
                    self.wfile.write(body)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def small_corpus(root: Path) -> Path:
    """Six small modules of this Python's standard library in `root`: a tiny stdlib-great corpus."""
    root.mkdir()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for name in ("textwrap.py", "colorsys.py", "bisect.py", "heapq.py", "shlex.py", "fnmatch.py"):
        shutil.copy(stdlib / name, root / name)
    return root
