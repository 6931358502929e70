"""Batch extraction: many videos to a folder of subtitle files, on this machine or on a Ray cluster.

Owns what a batch adds around the one pipeline: finding the videos and
mirroring their tree (:mod:`.inputs`), the resumable manifest
(:mod:`.manifest`), running one video and writing its files (:mod:`.work`),
the local process pool (:mod:`.local`), Ray tasks and engine actors
(:mod:`.ray_runner`, needs ``subflow[ray]``), progress (:mod:`.progress`) and
the ``subflow batch`` command (:mod:`.cli`). Every video goes through
:class:`subflow.pipeline.Pipeline`, exactly as ``subflow extract`` runs it.
"""
