"""imagepipe: the library behind the image-analysis Functions app (settings, contracts, ports, adapters)."""
