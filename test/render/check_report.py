#!/usr/bin/python3
"""Renders an ab_report_html page in headless Chromium and checks that its charts are drawn.

    check_report.py PAGE.html [--png OUT.png] [--chromium PATH] [--width 1200]

The page's marks carry their colours in the markup (class="ci-mark ci-better" fill="#...",
class="ot-band" fill="#..." fill-opacity="...", class="srm-observed" fill="#..."). This
script reads them from the HTML, renders the page to a PNG and counts, in the picture,
the pixels of each colour: every interval mark, every over-time band and line and the
observed bars of the sample-ratio chart must have left enough pixels of its colour, beyond
what the legends' swatches of that colour account for. A page whose SVG is not drawn (bad
markup, NaN coordinates, zero-size boxes) fails even though all its text is there.

Also checked: no <script>, no external URL. Prints what it measured; exits 1 on a failed
check, 2 when the page cannot be rendered. Works as root and as any other user (own
--user-data-dir and HOME in a temporary directory, --no-sandbox).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

try:
    from PIL import Image
except ImportError:  # a python3 of its own on PATH (pyenv, venv): Debian's has python3-pil
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    sys.exit("check_report: PIL is missing (Debian: apt-get install python3-pil)")

TOLERANCE = 3            # per channel: marks are flat colours, their inside is exact
MIN_MARK_PIXELS = 40     # an interval mark is at least 24x12 px, less its estimate's circle
MARK_SHARE = 0.25        # of a mark's box, at least, is left visible around the circle
MIN_LINE_PIXELS = 40     # a polyline of the over-time chart, 2.25 px wide
MIN_BAND_PIXELS = 30     # a band (a single point's band is an 18 px wide bar)
BAND_SHARE = 0.1         # of a band's area, at least, is not under another band
SWATCH_ALLOWANCE = 110   # the most pixels one legend swatch (10x10 or 18x3) can hold
BACKGROUND = (0xF3, 0xF4, 0xF7)


def fail(message):
    print("check_report: FAILED: " + message)
    sys.exit(1)


def hex_colour(text):
    text = text.lstrip("#")
    return tuple(int(text[i:i + 2], 16) for i in (0, 2, 4))


def blend_on_white(colour, opacity):
    return tuple(round(255 * (1 - opacity) + c * opacity) for c in colour)


def attribute(tag, name):
    match = re.search(r'\s' + re.escape(name) + r'="([^"]*)"', tag)
    return match.group(1) if match else None


def elements(html, css_class):
    """Opening tags whose class attribute contains css_class as a word."""
    found = []
    for tag in re.findall(r"<(?:rect|polygon|polyline|circle|line|path)\b[^>]*>", html):
        classes = (attribute(tag, "class") or "").split()
        if css_class in classes:
            found.append(tag)
    return found


def polygon_area(points):
    """Shoelace formula over "x,y x,y ..."."""
    xy = [tuple(float(v) for v in pair.split(",")) for pair in points.split()]
    twice = sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(xy, xy[1:] + xy[:1]))
    return abs(twice) / 2


def swatches(html, colour_text):
    return len(re.findall(r'background:\s*' + re.escape(colour_text) + r'\b', html, re.IGNORECASE))


def static_checks(html):
    lower = html.lower()
    for needle, what in (("<script", "a <script> element"), ("http:", "an external URL"),
                         ("https:", "an external URL"), ("url(", "a CSS url()"), ("@import", "an @import")):
        if needle in lower:
            fail("the page contains %s (%r)" % (what, needle))
    if not lower.lstrip().startswith("<!doctype html>"):
        fail("the page does not start with <!DOCTYPE html>")


def estimated_height(html):
    total = 0.0
    for tag in re.findall(r"<svg\b[^>]*>", html):
        try:
            total += float(attribute(tag, "height") or 0)
        except ValueError:
            pass
    rows = html.count("<tr")
    sections = html.count("<section")
    return int(700 + total + 42 * rows + 190 * sections)


def render(page, png, width, height, chromium):
    scratch = tempfile.mkdtemp(prefix="abtest-render-")
    try:
        env = dict(os.environ, HOME=scratch, XDG_CONFIG_HOME=scratch, XDG_CACHE_HOME=scratch)
        command = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                   "--disable-dev-shm-usage", "--no-first-run", "--force-device-scale-factor=1",
                   "--user-data-dir=" + os.path.join(scratch, "profile"),
                   "--window-size=%d,%d" % (width, height), "--screenshot=" + png,
                   "file://" + os.path.abspath(page)]
        try:
            done = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=120, check=False)
        except subprocess.TimeoutExpired:
            print("check_report: chromium did not finish within 120 s")
            sys.exit(2)
        except OSError as error:
            print("check_report: cannot run %s: %s" % (chromium, error))
            sys.exit(2)
        if not os.path.exists(png) or os.path.getsize(png) == 0:
            print("check_report: chromium wrote no screenshot (exit %d):" % done.returncode)
            print(done.stdout.decode("utf-8", "replace")[-3000:])
            sys.exit(2)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def near(pixel, colour):
    return all(abs(p - c) <= TOLERANCE for p, c in zip(pixel, colour))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("page")
    parser.add_argument("--png", help="where to keep the rendering (default: a temporary file)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--width", type=int, default=1200)
    args = parser.parse_args()

    with open(args.page, encoding="utf-8") as f:
        html = f.read()
    static_checks(html)

    # What the page says it draws, and in which colours.
    expected = {}  # colour -> [what, pixels required]

    def expect(colour_text, what, pixels):
        colour = hex_colour(colour_text)
        entry = expected.setdefault(colour, [what, 0, colour_text])
        entry[1] += pixels

    marks = 0
    for kind in ("ci-better", "ci-worse", "ci-neutral"):
        for tag in elements(html, kind):
            box = float(attribute(tag, "width") or 0) * float(attribute(tag, "height") or 0)
            expect(attribute(tag, "fill"), "interval marks (%s)" % kind, max(MIN_MARK_PIXELS, int(MARK_SHARE * box)))
            marks += 1
    lines = 0
    for tag in elements(html, "ot-line"):
        expect(attribute(tag, "stroke"), "over-time lines", MIN_LINE_PIXELS)
        lines += 1
    bands = 0
    band_colours = {}
    for tag in elements(html, "ot-band"):
        colour = blend_on_white(hex_colour(attribute(tag, "fill")), float(attribute(tag, "fill-opacity") or 1))
        if tag.startswith("<polygon"):
            area = polygon_area(attribute(tag, "points") or "")
        else:
            area = float(attribute(tag, "width") or 0) * float(attribute(tag, "height") or 0)
        band_colours[colour] = band_colours.get(colour, 0) + max(MIN_BAND_PIXELS, int(BAND_SHARE * area))
        bands += 1
    observed_bars = 0
    for tag in elements(html, "srm-observed"):
        width = float(attribute(tag, "width") or 0)
        height = float(attribute(tag, "height") or 0)
        if width >= 1:
            # Half of the drawn area at least (the SVG may be scaled down a little).
            expect(attribute(tag, "fill"), "sample-ratio bars (observed)", int(0.5 * width * height))
            observed_bars += 1
    # Pixels a legend swatch of the same colour may contribute do not count towards a mark.
    for colour, entry in expected.items():
        entry[1] += SWATCH_ALLOWANCE * swatches(html, entry[2])

    svgs = len(re.findall(r"<svg\b", html))
    print("check_report: %s: %d bytes, %d svg charts, %d interval marks, %d over-time lines, %d bands, "
          "%d observed bars" % (args.page, len(html), svgs, marks, lines, bands, observed_bars))
    if "class=\"chart ci-plot\"" in html and marks == 0 and "ci-estimate" not in html:
        fail("an interval plot without any mark")

    png = args.png or os.path.join(tempfile.mkdtemp(prefix="abtest-png-"), "report.png")
    height = estimated_height(html)
    for attempt in range(3):
        render(args.page, png, args.width, height, args.chromium)
        image = Image.open(png).convert("RGB")
        # The page must end inside the picture: its last rows are the page background.
        bottom = image.crop((0, image.height - 30, image.width, image.height))
        if all(near(p, BACKGROUND) for p in bottom.getdata()):
            break
        height *= 2
    else:
        fail("the page is longer than %d px" % height)

    # Counted over the distinct colours of the picture, not pixel by pixel.
    histogram = image.getcolors(maxcolors=1 << 24)
    total = image.width * image.height
    counts = {colour: 0 for colour in list(expected) + list(band_colours)}
    content = total
    for count, pixel in histogram:
        if near(pixel, BACKGROUND):
            content -= count
        for colour in counts:
            if near(pixel, colour):
                counts[colour] += count
    print("check_report: rendered %dx%d px to %s, %.1f%% of it not background"
          % (image.width, image.height, png, 100.0 * content / total))

    failures = []
    for colour, (what, required, text) in sorted(expected.items(), key=lambda item: item[1][0]):
        status = "ok" if counts[colour] >= required else "TOO FEW"
        print("  %-36s %s: %7d px (at least %d)  %s" % (what, text, counts[colour], required, status))
        if counts[colour] < required:
            failures.append("%s in %s: %d px, expected at least %d" % (what, text, counts[colour], required))
    for colour, required in sorted(band_colours.items()):
        text = "#%02x%02x%02x" % colour
        status = "ok" if counts[colour] >= required else "TOO FEW"
        print("  %-36s %s: %7d px (at least %d)  %s" % ("over-time band (blended)", text, counts[colour], required,
                                                        status))
        if counts[colour] < required:
            failures.append("over-time band %s: %d px, expected at least %d" % (text, counts[colour], required))
    if content < 0.05 * total:
        failures.append("the rendering is almost empty")

    # A copy without the empty page below the content, for people (README).
    last = image.height - 1
    while last > 0 and all(near(image.getpixel((x, last)), BACKGROUND) for x in range(0, image.width, 4)):
        last -= 1
    image.crop((0, 0, image.width, min(image.height, last + 24))).save(png)

    if failures:
        fail("; ".join(failures))
    print("check_report: ok, the charts are drawn")


if __name__ == "__main__":
    main()
