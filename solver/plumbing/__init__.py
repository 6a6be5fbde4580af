"""What every adapter runs on: the wall clock, stopping asyncio tasks, JSON logs."""
