"""Opens a DeepSeek-Visualizer page in headless Chromium and checks it (scripts/test_viz.sh).

    python tools/check_viz_page.py PAGE.html[#FRAGMENT] EXPECT.json [--screenshot OUT.png]

Loads the page with ``--dump-dom`` and ``--enable-logging=stderr``, and fails when:
- Chromium logged any console message (the page logs nothing when it works: a script error
  appears as ``INFO:CONSOLE ... "Uncaught ..."``), or the page's own error hook counted one
  (``body[data-errors]``, the ``#viz-errors`` list);
- the page did not finish drawing (``body[data-rendered="1"]`` missing);
- an expected element is missing: EXPECT.json lists CSS-like requirements as
  ``{"present": [[tag, {attr: value, ...}, min_count], ...], "text": [strings]}``; each needs
  at least ``min_count`` elements of that tag carrying those attribute values, and each text
  must occur in the page's text.
With ``--screenshot`` it also saves a PNG of the page (kept as a test artefact) and checks it
is a PNG that is not blank.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zlib
from html.parser import HTMLParser

CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                "--no-first-run", "--disable-extensions", "--mute-audio"]


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    sys.exit("check_viz_page: chromium not found (apt-get install chromium)")


class Dom(HTMLParser):
    def __init__(self):
        super().__init__()
        self.elements = []   # (tag, attrs dict)
        self.text = []
        self.stack = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def run(cmd, profile):
    env = dict(os.environ, HOME=profile)
    return subprocess.run(cmd + [f"--user-data-dir={profile}"], capture_output=True, text=True,
                          timeout=120, env=env)


def png_not_blank(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return False, "not a PNG"
    # Decompress the image data and look for more than one byte value.
    pos, idat = 8, b""
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    raw = zlib.decompress(idat)
    return len(set(raw)) > 8, f"{len(data)} bytes"


def main():
    args = sys.argv[1:]
    shot = None
    if "--screenshot" in args:
        i = args.index("--screenshot")
        shot = args[i + 1]
        del args[i:i + 2]
    page, expect_path = args
    expect = json.load(open(expect_path))
    page, _, fragment = page.partition("#")
    url = "file://" + os.path.abspath(page) + ("#" + fragment if fragment else "")
    exe = chromium()
    failures = []
    with tempfile.TemporaryDirectory() as profile:
        r = run([exe] + CHROME_FLAGS + ["--enable-logging=stderr", "--v=0", "--dump-dom", url],
                profile)
        if r.returncode != 0:
            failures.append(f"chromium exited with {r.returncode}: {r.stderr[-2000:]}")
        console = [l for l in r.stderr.splitlines() if ":CONSOLE" in l]
        failures += [f"console message: {l}" for l in console]
        dom = Dom()
        dom.feed(r.stdout)
        body = next((a for t, a in dom.elements if t == "body"), None)
        if body is None:
            failures.append("no <body> in the dumped DOM")
            body = {}
        if body.get("data-rendered") != "1":
            failures.append("the page did not finish drawing (no body[data-rendered=1])")
        if body.get("data-errors"):
            failures.append(f"the page's error hook counted {body['data-errors']} error(s)")
        errors_list = r.stdout.split('id="viz-errors">', 1)[-1].split("</ul>", 1)[0]
        if "<li>" in errors_list:
            failures.append(f"#viz-errors lists: {errors_list[:1000]}")
        for tag, attrs, n in expect.get("present", []):
            got = sum(1 for t, a in dom.elements if t == tag
                      and all(a.get(k) == str(v) for k, v in attrs.items()))
            if got < n:
                failures.append(f"expected at least {n} <{tag} {attrs}>, found {got}")
        text = " ".join(dom.text)
        for s in expect.get("text", []):
            if s not in text:
                failures.append(f"text {s!r} not in the page")
        if shot:
            os.makedirs(os.path.dirname(os.path.abspath(shot)), exist_ok=True)
            r2 = run([exe] + CHROME_FLAGS + ["--window-size=1400,1800",
                                             f"--screenshot={os.path.abspath(shot)}", url],
                     profile)
            if r2.returncode != 0 or not os.path.isfile(shot):
                failures.append(f"no screenshot: {r2.stderr[-1000:]}")
            else:
                ok, what = png_not_blank(shot)
                if not ok:
                    failures.append(f"screenshot {shot} is blank or broken ({what})")
    if failures:
        print(f"FAIL {page}:", *failures, sep="\n  ", file=sys.stderr)
        sys.exit(1)
    print(f"ok {page}: rendered, no console error, {len(expect.get('present', []))} element "
          f"checks and {len(expect.get('text', []))} text checks passed"
          + (f", screenshot {shot}" if shot else ""))


if __name__ == "__main__":
    main()
