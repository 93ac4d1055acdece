"""Edit judges: what a judge is asked, how its answers are read, and the backends that answer."""
