"""Pyramid, its matched route in the summary and metrics: ``gunicorn pyramid_route:app``."""

from pyramid.config import Configurator

from dockerflow_wsgi import DockerflowMiddleware


def dockerflow_route_tween_factory(handler, registry):
    """Report the pattern of the route Pyramid matched, also when the view raises."""

    def dockerflow_route_tween(request):
        try:
            return handler(request)
        finally:
            if request.matched_route is not None:  # None when no route matched
                request.environ["dockerflow.route"] = request.matched_route.pattern

    return dockerflow_route_tween


def note(request):
    return {"note": request.matchdict["note_id"]}


with Configurator() as config:
    config.add_tween("pyramid_route.dockerflow_route_tween_factory")
    config.add_route("note", "/notes/{note_id}")
    config.add_view(note, route_name="note", renderer="json")

app = DockerflowMiddleware(config.make_wsgi_app())
