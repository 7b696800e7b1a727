"""Admin date and time formats (FORMAT_MODULE_PATH): seconds and the time zone, unambiguous."""
