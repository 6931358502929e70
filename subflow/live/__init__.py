"""Live captioning: streams in, cues out to WebSocket clients and the overlay page.

- :mod:`.source`: :class:`LiveSource`, a video source that reconnects and never falls behind;
- :mod:`.server`: :class:`CaptionServer`, one session fanned out to many WebSocket clients;
- :mod:`.client`: :class:`CaptionClient`, the Python client of that protocol (docs/protocol.md);
- :mod:`.cli`: the ``subflow live`` command that wires them to the pipeline.
"""
