"""vertex-cron: put compiled Kubeflow pipelines on a cron schedule on Vertex AI."""

__version__ = "0.1.0"
