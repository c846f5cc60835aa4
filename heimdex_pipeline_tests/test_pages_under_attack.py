"""The pages of `heimdex serve` in Chromium, attacked as a browser is: videos whose titles are
markup (one from a file's name, one from an upload's name) and a person named with markup, on
every page that shows a title or a name, and another site's forms posting to the server while
its user is signed in. Screenshots go to artifacts/."""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from fastapi.testclient import TestClient

from heimdex_pipeline.cli.demo import frame_at
from heimdex_pipeline.pipeline.local_runs import index_paths
from heimdex_pipeline.serve.app import create_app
from heimdex_pipeline.settings import load_settings
from heimdex_pipeline_tests.conftest import (
    free_port,
    served,
    stores_of,
    suite_env,
    wait_for_model,
)

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
TOKEN = "tok-Pages-Attacked-1"
IMG = '<img src=x onerror="window.__xss=1">'
SCRIPT = "<script>window.__xss=2</script>"
BROKEN = '<img src=x onerror="window.__xss=3">'  # a file that fails: its name in the error
NEXT = '/videos?from="><script>window.__xss=4</script>'  # the sign-in page's hidden field
PERSON = '"><img src=x onerror="window.__xss=5">'  # a name typed on the people page
FACES = "carphone_pristine.mp4"  # one person seen, in a clip of 4 s


@pytest.fixture(scope="module")
def hostile_library(sample_videos, tmp_path_factory, tiny_clip):
    """Three videos with markup for titles: one named so on disk and indexed, one uploaded
    under such a name (POST /api/videos keeps the name as the title) and indexed, both of the
    same person, and one that fails (its error names the file). A token is set, so the pages
    need the sign-in cookie; speech is off (no page here shows words)."""
    home = tmp_path_factory.mktemp("hostile")
    env = suite_env(home / "home", tiny_clip, HEIMDEX_API_TOKEN=TOKEN, HEIMDEX_FACES="on")
    settings = load_settings(env)
    stores_of(settings)
    named = home / f"{IMG}.mp4"
    shutil.copy(sample_videos / FACES, named)
    broken = home / f"{BROKEN}.mp4"
    broken.write_bytes(b"this is not a video\n" * 100)
    clip = (f"{SCRIPT}.mp4", (sample_videos / FACES).read_bytes())
    answer = TestClient(create_app(settings)).post(
        "/api/videos", files={"file": clip}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert answer.status_code == 201, answer.text
    uploaded = settings.home / "objects" / answer.json()["key"]  # indexed where it landed
    outcomes = index_paths([named, uploaded, broken], settings)
    assert [o.state for o in outcomes] == ["indexed", "indexed", "failed"], outcomes
    assert outcomes[1].video_id == answer.json()["video_id"]  # the upload's row, its title
    titles = {f"{IMG}.mp4": outcomes[0], f"{SCRIPT}.mp4": outcomes[1], f"{BROKEN}.mp4": outcomes[2]}
    with served(settings) as base:
        wait_for_model(base)
        yield base, titles


class Watched:
    """What a page did that markup in a title would make it do: a dialog, a script error, a
    console error, a request for the `x` an injected `<img src=x>` loads."""

    def __init__(self, page):
        self.page, self.seen = page, []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.seen.append(f"page error: {error}"))
        page.on("console", self._console)
        page.on("request", self._request)

    def _dialog(self, dialog) -> None:
        self.seen.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    def _console(self, message) -> None:
        # a refused request (the upload page's 400) is logged as a failed resource: not
        # script, and an injected picture's own request is caught by _request
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.seen.append(f"console error: {message.text}")

    def _request(self, request) -> None:
        if urlsplit(request.url).path.rsplit("/", 1)[-1] == "x":
            self.seen.append(f"request for an injected picture: {request.url}")

    def nothing_ran(self, where: str) -> None:
        """Nothing of the markup ran or was parsed as markup on this page."""
        page = self.page
        assert page.evaluate("typeof window.__xss") == "undefined", where
        assert page.locator('img[src="x"]').count() == 0, where
        scripts = page.eval_on_selector_all("script", "all => all.map(s => s.textContent)")
        assert not any("__xss" in text for text in scripts), where
        assert self.seen == [], (where, self.seen)

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"serve-hostile-{name}.png"), full_page=True)


@pytest.fixture
def watched(browser_page) -> Watched:
    return Watched(browser_page)


def test_markup_in_titles_and_names_is_shown_as_text_on_every_page(
    hostile_library, watched, tmp_path
):
    """The sign-in page, the videos page, the people page (where the person is named) and the
    person's page, the search page with hits (by text, then by a face), each video's page and
    the upload page (its refusal names the file): each title and name reads as the literal text
    it is, and nothing of it runs (no `window.__xss`, no dialog, no console error, no injected
    element)."""
    from playwright.sync_api import expect

    base, titles = hostile_library
    page = watched.page

    page.goto(f"{base}/login?next={quote(NEXT)}")
    assert page.locator("input[name=next]").input_value() == NEXT
    watched.nothing_ran("the sign-in page")
    watched.shot("sign-in")
    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: url.startswith(f"{base}/videos?from="))  # where `next` said

    cards = page.locator(".card.video")
    expect(cards).to_have_count(3)
    shown = cards.locator(".title").all_inner_texts()
    assert sorted(shown) == sorted(titles), shown
    for title in titles:
        expect(cards.locator(".title", has_text=title)).to_be_visible()
    broken = cards.filter(has=page.locator(".title", has_text=f"{BROKEN}.mp4"))
    expect(broken.locator(".error")).to_contain_text(f"{BROKEN}.mp4")  # the error names it
    watched.nothing_ran("the videos page")
    watched.shot("videos")

    page.goto(f"{base}/people")  # the person both videos show, named with markup here
    person = page.locator(".card.person").first
    person_id = person.get_attribute("data-person")
    with page.expect_response(lambda r: r.request.method == "PUT") as renamed:
        person.locator("input[name=name]").fill(PERSON)
        person.locator("input[name=name]").press("Enter")
    assert renamed.value.status == 200, renamed.value.text()
    page.reload()
    expect(page.locator(f".card.person[data-person='{person_id}'] input")).to_have_value(PERSON)
    watched.nothing_ran("the people page")
    watched.shot("people")

    page.goto(f"{base}/people/{person_id}")
    expect(page.locator("h1")).to_have_text(PERSON)
    assert page.title() == f"{PERSON} · Heimdex"
    indexed = {t: o for t, o in titles.items() if o.state == "indexed"}
    assert set(page.locator(".hit .title").all_inner_texts()) == set(indexed)
    watched.nothing_ran("the page of the person")
    watched.shot("person")

    page.goto(f"{base}/?q={quote(IMG)}&mode=visual")  # the query is markup too
    expect(page.locator("#status")).to_contain_text(f"for “{IMG}”", timeout=30_000)
    hits = page.locator(".hit")
    expect(hits).to_have_count(min(24, sum(len(o.scenes) for o in indexed.values())))
    assert set(hits.locator(".title").all_inner_texts()) == set(indexed)
    watched.nothing_ran("the search page")
    watched.shot("search")

    face = frame_at(Path(titles[f"{IMG}.mp4"].source), 2.0, tmp_path / "face.png")
    page.set_input_files("#face", str(face))  # a hit by a face names its person
    expect(hits.locator(".who").first).to_contain_text(PERSON, timeout=30_000)
    assert set(hits.locator(".title").all_inner_texts()) == set(indexed)
    watched.nothing_ran("the search page, by a face")
    watched.shot("search-by-face")

    for number, (title, outcome) in enumerate(titles.items()):
        page.goto(f"{base}/videos/{outcome.video_id}")
        expect(page.locator("h1")).to_contain_text(title)
        assert page.title() == f"{title} · Heimdex"
        if outcome.state == "failed":
            expect(page.locator("p.error")).to_contain_text(title)
        else:
            expect(page.locator(".scene")).to_have_count(len(outcome.scenes))
            expect(page.locator(".faces-of-video .face").first).to_contain_text(PERSON)
        watched.nothing_ran(f"the page of {title}")
        watched.shot(f"video-{number + 1}")

    page.goto(f"{base}/upload")
    payload = {"name": f"{IMG}.txt", "mimeType": "text/plain", "buffer": b"not a video"}
    page.set_input_files("#file", files=[payload])
    page.click("#upload button[type=submit]")
    status = page.locator("#status")
    expect(status).to_contain_text("not a video file name", timeout=30_000)
    # Chromium sends a `"` of a file name as %22 (the HTML form encoding); the rest as it is
    expect(status).to_contain_text("<img src=x onerror=")
    watched.nothing_ran("the upload page")
    watched.shot("upload")


ATTACKS = {
    "upload": """<form method="post" action="{base}/api/videos" enctype="multipart/form-data">
<input type="file" name="file"></form>
<script>
const form = document.forms[0], files = new DataTransfer();
files.items.add(new File([new Uint8Array(4096)], "planted.mp4", {{type: "video/mp4"}}));
form.elements.file.files = files.files;
form.submit();
</script>""",
    "sign-in": """<form method="post" action="{base}/login">
<input name="token" value="guessed"><input name="next" value="/videos"></form>
<script>document.forms[0].submit();</script>""",
}


@contextlib.contextmanager
def another_site(base: str) -> Iterator[str]:
    """A tiny site of its own (`localhost`, another port: another site than `127.0.0.1`) whose
    pages post forms to `base` as soon as they load: `/upload.html`, `/sign-in.html`."""
    pages = {f"/{name}.html": html.format(base=base).encode() for name, html in ATTACKS.items()}

    class Pages(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server calls it by this name
            body = pages.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_another_sites_form_cannot_post_with_the_sign_in_cookie(make_settings, browser_page):
    """Signed in on the server, the user opens another site whose forms post an upload and a
    sign-in to it: both refused, nothing registered, nothing under incoming/. The same
    browser then uploads from the server's own page: the session was live all along."""
    from playwright.sync_api import expect

    settings = make_settings(HEIMDEX_API_TOKEN=TOKEN)
    stores = stores_of(settings)
    incoming = settings.home / "objects" / "incoming"
    page = browser_page
    with served(settings) as base, another_site(base) as elsewhere:
        page.goto(f"{base}/login?next=/upload")
        page.fill("input[name=token]", TOKEN)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/upload")
        cookies = {c["name"]: c for c in page.context.cookies(base)}
        assert cookies["heimdex_token"]["sameSite"] == "Strict"

        for name, target in [("upload", "/api/videos"), ("sign-in", "/login")]:
            with page.expect_response(lambda r, t=target: r.url == base + t) as answer:
                page.goto(f"{elsewhere}/{name}.html")
            assert answer.value.request.method == "POST"
            assert answer.value.status in (401, 403), (name, answer.value.status)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"serve-cross-site-{name}-refused.png"))
        assert not incoming.exists() or list(incoming.iterdir()) == []
        with stores.catalog.session() as session:
            from heimdex_pipeline.catalog.models import Video

            assert session.query(Video).count() == 0

        page.goto(f"{base}/upload")
        page.set_input_files(
            "#file", files=[{"name": "mine.mp4", "mimeType": "video/mp4", "buffer": bytes(4096)}]
        )
        page.click("#upload button[type=submit]")
        expect(page.locator("#status")).to_contain_text("Uploaded as", timeout=30_000)
        assert [p.name for p in incoming.iterdir()] == ["mine.mp4"]
