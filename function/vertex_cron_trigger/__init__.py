"""The trigger function's runtime: one scheduled firing in, one Vertex AI PipelineJob out.

Shared by the Cloud Run function (function/main.py), the deployer's local validation and
the Luigi task. It never imports the deployer (`vertex_cron`).
"""
