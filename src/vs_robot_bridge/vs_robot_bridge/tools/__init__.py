"""Command-line tools: hardware check (ur_check) and the stop-latency benchmark."""
