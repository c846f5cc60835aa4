"""One router per area of `heimdex serve`; `app.py` includes them all. A new route goes in the
router of its area (or a new module here, included in `ROUTERS`)."""

from heimdex_pipeline.serve.routers import docs, health, media, pages, people, search, videos

ROUTERS = [
    health.router,
    search.router,
    people.router,
    videos.router,
    media.router,
    pages.sign_in,
    pages.router,
    people.pages,
    docs.router,
]
