"""Server-rendered pages for staff, the person at a kiosk, family, counsel and
courts: an entry point beside ``kinline.api`` that calls the same services.

Each feature is a folder: ``pages.py`` (an APIRouter, include_in_schema=False,
every route guarded by ``kinline.web.guard.page``), ``templates/`` and its own
``locale/{en,es}/LC_MESSAGES/pages.po``. ``kinline.web.app.mount`` adds them
to the API's app, with /static and HTML answers for page errors.
"""
