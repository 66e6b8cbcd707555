"""Tools run from the `ivr` command: the Twilio stand-in, reports and charts, prompts for translators and voice
actors."""
