"""The service layer: one module per use case.

Each public function takes an engine (or a connection) and plain values
(already parsed by the view), opens one connection or transaction for the
whole use case, reads rows with :mod:`db`, does its maths with :mod:`geo`,
and returns plain data (dicts, lists, dataclasses) for the view to render.
Nothing here knows Flask or a request.
"""
