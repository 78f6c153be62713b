"""The desktop app (PySide6). The only package that imports Qt.

``MainWindow`` wires docks and actions; ``Canvas`` shows image + label overlay and handles the
tools; heavy work (predict, fine-tune) runs in ``workers`` on ``QThread``s, never on the GUI thread.
"""
