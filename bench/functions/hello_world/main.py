"""The floor: the smallest functions-framework function, answering 200 at once.

Nothing vertex-cron does can start faster than this on the same machine."""


def trigger(request):
    return "ok", 200
