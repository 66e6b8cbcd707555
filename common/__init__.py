"""What menus/, routing/ and ivr/ share, defined once: config-file loading and the hotline's fixed facts.

Pure: no Flask, Twilio, Redis, RQ or structlog, no clock reads, no I/O beyond reading a config file it is given.
"""
