"""``subflow serve``: a web app and HTTP API where editors extract, review, fix and export subtitles.

What this subpackage owns:

* ``store``: the SQLite database (jobs, cues, edits with their history for undo);
* ``jobs``: the job queue and its workers (one shared engine per engine name);
* ``media``: files on disk (uploads, crops), paths confined to the media roots, frames by exact time;
* ``app``: the FastAPI routes, auth and error shapes; ``static/`` the review page (plain HTML/JS/CSS);
* ``cli``: the ``subflow serve`` command.

Extraction goes through :class:`subflow.pipeline.Pipeline` and exports through
:mod:`subflow.sinks`: there is no second pipeline and no second writer.
"""
