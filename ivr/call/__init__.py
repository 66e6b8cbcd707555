"""The call flow: what each webhook step says and where it sends the caller, as TwiML (no Flask, no Redis)."""
