"""Open a report in headless Chromium: check that it renders, take a screenshot.

Uses the system's Chromium (Debian: ``apt-get install chromium``) through its
command line only: ``--dump-dom`` for a copy of the page with a checking script
added (it writes, after the load event, every image's ``naturalWidth`` and the
number of tables into a ``<pre id="spikeforge-check">`` element, which the dumped
DOM then holds), and ``--screenshot`` for the picture. No browser is downloaded.

Run as a script: ``python -m spikeforge.analysis.browser REPORT.html [SCREENSHOT.png]``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--virtual-time-budget=5000",
)
_CHECK = """<script>
window.addEventListener("load", function () {
  var imgs = Array.prototype.map.call(document.images, function (i) {
    return {alt: i.alt, complete: i.complete, naturalWidth: i.naturalWidth};
  });
  var pre = document.createElement("pre");
  pre.id = "spikeforge-check";
  pre.textContent = JSON.stringify({images: imgs,
    tables: document.querySelectorAll("table").length,
    classes: Array.prototype.map.call(document.querySelectorAll("table"),
      function (t) { return t.className; })});
  document.body.appendChild(pre);
});
</script>"""


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable on ``PATH``, else None."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(chromium: str, args: list[str], profile: str, timeout: float) -> str:
    cmd = [chromium, *FLAGS, f"--user-data-dir={profile}", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(f"{os.path.basename(chromium)} failed ({res.returncode}): {res.stderr}")
    return res.stdout


def check_in_browser(
    html_path: str,
    screenshot: str | None = None,
    chromium: str | None = None,
    width: int = 1200,
    height: int = 3400,
    timeout: float = 120.0,
) -> dict:
    """Render ``html_path`` in headless Chromium and report what loaded.

    Returns ``{"images": [{"alt", "complete", "naturalWidth"}, ...], "tables": n,
    "classes": [...]}`` as the page saw it after its load event; with
    ``screenshot`` also writes a PNG of the page (``width`` x ``height`` pixels).
    Raises ``FileNotFoundError`` when no Chromium is installed.
    """
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError(
            "no Chromium found on PATH (Debian: apt-get install chromium); tried "
            + ", ".join(CHROMIUM_NAMES)
        )
    with open(html_path) as f:
        page = f.read()
    if "</body>" not in page:
        raise ValueError(f"{html_path} is not an HTML page with a </body>")
    with tempfile.TemporaryDirectory(prefix="spikeforge-chromium-") as tmp:
        probe = os.path.join(tmp, "probe.html")
        with open(probe, "w") as f:
            f.write(page.replace("</body>", _CHECK + "</body>", 1))
        dom = _run(chromium, ["--dump-dom", f"file://{probe}"], os.path.join(tmp, "p1"), timeout)
        m = re.search(r'<pre id="spikeforge-check">(.*?)</pre>', dom, re.S)
        if m is None:
            raise RuntimeError("the page's load event never ran the check script")
        result = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))
        if screenshot:
            shot = os.path.abspath(screenshot)
            _run(
                chromium,
                [f"--screenshot={shot}", f"--window-size={width},{height}",
                 f"file://{os.path.abspath(html_path)}"],
                os.path.join(tmp, "p2"),
                timeout,
            )
            if not os.path.exists(shot):
                raise RuntimeError(f"chromium wrote no screenshot at {shot}")
    return result


def main(argv: list[str] | None = None) -> int:
    """``python -m spikeforge.analysis.browser REPORT.html [SCREENSHOT.png]``: exit 1 when
    an image did not load or a table is missing."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(__doc__)
        return 2
    res = check_in_browser(argv[0], argv[1] if len(argv) > 1 else None)
    bad = [i["alt"] for i in res["images"] if not i["naturalWidth"]]
    print(json.dumps(res, indent=1))
    if bad or res["tables"] < 3:
        print(f"broken images: {bad}; tables: {res['tables']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
