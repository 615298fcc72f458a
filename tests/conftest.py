import sys
from pathlib import Path

# Test helpers (e.g. ram_driver) live beside the tests.
sys.path.insert(0, str(Path(__file__).parent))
