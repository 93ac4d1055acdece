"""ICEdit core: pure torch / PIL / numpy. Knows nothing of ComfyUI (never imports comfy, nodes, folder_paths)."""
