"""Navigation benchmarks: speech (STT word error rate, TTS round trip) and menu navigation."""
