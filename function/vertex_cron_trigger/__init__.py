"""The trigger function's runtime: one scheduled firing in, one Vertex AI PipelineJob out.

Shared by the Cloud Run function (function/main.py), the deployer's local validation and
the Luigi task. It never imports the deployer (`vertex_cron`).

Every cold start pays for importing what an on-time firing needs (bench/RESULTS.md, issue
16), so that path defines its records as `typing.NamedTuple`s or plain classes with
`__slots__`, not dataclasses (about 1 ms each to create, a NamedTuple a fifth of that), and
imports what only the catch-up sweep or a rare body needs where it is used.
"""
