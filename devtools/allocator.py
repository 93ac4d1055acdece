"""glibc settings for a process whose resident size is measured (the memory tests and bench/large_image.py).

glibc raises its mmap threshold after large frees (up to 32 MB); freed slabs below it may then stay in the heap and
in the resident size, which then moves from run to run. A fixed threshold makes every allocation above 128 KB a
mapping of its own, returned to the system when freed: the resident size counts what is alive."""

STEADY_ALLOCATOR = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}
