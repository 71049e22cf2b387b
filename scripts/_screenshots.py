"""The documentation's screenshots (docs/images/*.png), taken from a running site with the demo
data, by Playwright in Debian's chromium: the browser of the tests (tests/support/browser.py).
Run through ``scripts/screenshots``, which makes the .venv first.

Without ``--url`` it starts the product itself, ``scripts/run --demo`` on the embedded defaults
in a temporary folder (its own SQLite, broker and files; nothing of var/ is touched), waits for
the worker to read every demo film, takes the pictures and stops it again. With ``--url`` it
uses a site already running with the demo loaded (``scripts/run --demo``)."""

from __future__ import annotations

import argparse
import io
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.browser import MASKS_DRAWN, chromium, log_in  # noqa: E402
from tests.support.processes import (free_port, run_command_environment,  # noqa: E402
                                     wait_until_serving)

VIEWPORT = {"width": 1280, "height": 800}
# Each picture is reduced to 256 colours (text and film stay legible; the case page is about
# 320 KB); one still larger than this stops the script rather than bloat the repository.
MAX_BYTES = 500_000


def parse_args(argv):
    # The demo's log-in, from where seed_demo takes it (no database is opened for this).
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.development")
    django.setup()
    from webapp.cases.services.demo import DEFAULT_PASSWORD, USERNAME

    parser = argparse.ArgumentParser(prog="scripts/screenshots", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running site with the demo loaded (default: start one)")
    parser.add_argument("--username", default=USERNAME)
    parser.add_argument("--password", default=DEFAULT_PASSWORD)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    parser.add_argument("--wait", type=float, default=900,
                        help="seconds to wait for the worker to read the demo films (default 900)")
    return parser.parse_args(argv)


@contextmanager
def demo_site(folder: Path):
    """``scripts/run --demo`` on a free port, its state in ``folder``; stopped with Ctrl-C's
    signal on the way out, as a person stops it."""
    port = free_port()
    env = run_command_environment(folder, port, WEB_CONCURRENCY="2")
    log_path = folder / "run.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(["bash", "scripts/run", "--demo"], cwd=REPO, env=env,
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_serving(f"{url}/login/", process, log_path, 600, "scripts/run --demo")
            print(f"==> the demo site is up at {url} (its log: {log_path})", flush=True)
            yield url
        finally:
            _stop(process)


def _stop(process: subprocess.Popen) -> None:
    """Ctrl-C to the site's process group (web, worker, reconciler), then SIGKILL if it lingers."""
    try:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)
    except ProcessLookupError:  # it had stopped already (and said why in its log)
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def wait_for_films(page, url: str, patience: float) -> list[dict]:
    """The worklist's rows once no film is queued or running any more."""
    deadline = time.monotonic() + patience
    started = time.monotonic()
    while True:
        rows = page.request.get(f"{url}/cases/worklist.json").json()["rows"]
        pending = [r for r in rows if r["status"] in ("queued", "running")]
        if rows and not pending:
            print(f"==> {len(rows)} film(s) read in {time.monotonic() - started:.0f} s", flush=True)
            return rows
        if time.monotonic() > deadline:
            sys.exit(f"scripts/screenshots: {len(pending)} of {len(rows)} demo film(s) still unread "
                     f"after {patience:.0f} s (is a worker running? is the demo loaded?)")
        time.sleep(3)


def save(png: bytes, path: Path) -> None:
    """Write ``png`` smaller: palette quantisation, then Pillow's optimiser."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, optimize=True)
    size = path.stat().st_size
    print(f"    {path.relative_to(REPO) if path.is_relative_to(REPO) else path}: {size // 1024} KB",
          flush=True)
    if size > MAX_BYTES:
        sys.exit(f"scripts/screenshots: {path} is {size} bytes, over {MAX_BYTES}")


def take(page, url: str, rows: list[dict], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    page.goto(f"{url}/cases/")
    page.wait_for_selector("table")
    save(page.screenshot(), out / "worklist.png")

    shown = max((r for r in rows if r["positive"]), key=lambda r: r["max_probability"] or 0,
                default=None)
    if shown is None:
        sys.exit("scripts/screenshots: the model called none of the demo films positive")
    page.goto(f"{url}/cases/{shown['id']}/")
    page.wait_for_function(MASKS_DRAWN, arg=1)
    page.wait_for_selector("[data-role=findings]:not([hidden])")
    page.locator("section.image").scroll_into_view_if_needed()
    save(page.screenshot(), out / "case-page.png")

    # The viewer at work: the outlined film with the original beside it.
    viewer = page.locator("[data-viewer]")
    viewer.locator("[data-viewer-role=side-by-side]").check()
    page.wait_for_timeout(300)
    save(viewer.screenshot(), out / "viewer.png")
    viewer.locator("[data-viewer-role=side-by-side]").uncheck()

    # The review form as a clinician fills it in (not sent: the demo case stays unreviewed).
    review = page.locator("[data-role=review]")
    review.scroll_into_view_if_needed()
    review.get_by_label("Agree with the result", exact=True).check()
    review.get_by_label("Pneumothorax present", exact=True).check()
    review.locator("textarea").fill("Large apical pneumothorax, as outlined.")
    save(review.screenshot(), out / "review.png")

    page.goto(f"{url}/cases/model/")
    save(page.screenshot(), out / "model-page.png")


def main(argv=None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="screenshots-") as folder:
        site = demo_site(Path(folder)) if not args.url else _given(args.url.rstrip("/"))
        with site as url, chromium() as browser:
            page = browser.new_page(viewport=VIEWPORT)
            log_in(page, url, args.username, args.password)
            rows = wait_for_films(page, url, args.wait)
            take(page, url, rows, args.out)
    print(f"==> screenshots written to {args.out}")


@contextmanager
def _given(url: str):
    yield url


if __name__ == "__main__":
    main()
