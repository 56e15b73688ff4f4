"""`python -m worker`: run the Cloud Run worker."""

import asyncio

from worker.app import main

asyncio.run(main())
