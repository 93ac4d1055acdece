"""What ICEdit Video Noise and the runner say to each other about a clip edited in segments: the runner sets the
node's carry_in, the node reports its end state in its ui output. Stdlib only: the runner imports it without
torch or ComfyUI."""

CARRY_START = "start"  # carry_in of a segmented clip's first segment: nothing to continue, but report the state
CARRY_UI_KEY = "icedit_carry"  # the ui key a segment's noise reports its end state under (read from the history)
