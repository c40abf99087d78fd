"""In-memory fakes of the HTTP services our adapters call, as azure-core transports.

The real SDK clients (azure-cosmos, azure-ai-vision-imageanalysis) run unchanged on top of them, so tests
exercise the SDKs' request building, authentication, retry policies and response parsing.
"""
