"""The #9999 hotline router: Flask webhooks driven by Twilio, with Redis, RQ, structlog and Prometheus."""
