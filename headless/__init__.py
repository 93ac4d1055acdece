"""Headless tooling around the pack: the ComfyUI host, the smoke-test models, the command-line runner."""
