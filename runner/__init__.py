"""The headless runner: plans a batch against its ledger and edits it through ComfyUI servers it starts or is given
(`python -m comfyui_icedit.runner.run_icedit`, what scripts/icedit runs). Never imports ComfyUI."""
