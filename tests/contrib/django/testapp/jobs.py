"""A task outside tasks.py: a worker imports this module when its first job arrives."""

from tests.contrib.django.testapp.models import Note

try:
    from django.tasks import task
except ImportError:
    from django_tasks import task


@task()
def write_note_elsewhere(db: str, text: str) -> int:
    return Note.objects.using(db).create(text=text).pk
