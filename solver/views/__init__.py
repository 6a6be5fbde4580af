"""Read models kept from the events, committed per transaction (positions, ...)."""
