"""Keeps every benchmark process on 127.0.0.1 and proves it did (see sitecustomize.py)."""
