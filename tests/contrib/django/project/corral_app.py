"""A Corral app of the project's own, given to the backend as OPTIONS["app"]."""

import os

from corral import Corral

_STORE = os.path.join(os.path.dirname(os.environ["CORRAL_DJANGO_SQLITE"]), "app-store.db")
app = Corral(f"sqlite:///{_STORE}")


@app.task(name="native.shout")
def shout(text: str) -> str:
    return text.upper() + "!"
