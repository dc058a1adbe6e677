"""A fake of Fusion's UIManager, just enough for the script's window: elements by ID, event
handlers set as `win.On.<ID>.<Event> = fn`, a repeating Timer, and a RunLoop() that fires the
timer and lets a test play the user (read the window, click buttons) until ExitLoop()."""

import time
import types


class Element:
    def __init__(self, kind, props, children):
        self.kind, self.children = kind, children
        self.__dict__.update(props)
        self.running = False

    def Start(self):
        self.running = True

    def Stop(self):
        self.running = False


class UIManager:
    """ui.VGroup(...), ui.Label({...}), ui.Timer({...}) …: any kind of element."""

    def __getattr__(self, kind):
        def make(*args):
            props = args[0] if args and isinstance(args[0], dict) else {}
            children = args[-1] if args and isinstance(args[-1], list) else []
            element = Element(kind, props, children)
            if kind == "Timer":
                self.timers.append(element)
            return element

        return make

    def __init__(self):
        self.timers = []


class Handlers:
    """`On.<ID>` is a namespace of handlers; `On.<Event> = fn` sets one on the dispatcher."""

    def __init__(self):
        object.__setattr__(self, "by_id", {})

    def __getattr__(self, name):
        return self.by_id.setdefault(name, types.SimpleNamespace())

    def __setattr__(self, name, value):
        self.by_id[name] = value


class Window:
    def __init__(self, props, layout):
        self.props, self.layout = props, layout
        self.On = Handlers()
        self.visible = False

    def GetItems(self):
        items, todo = {}, [self.layout]
        while todo:
            element = todo.pop()
            if getattr(element, "ID", None):
                items[element.ID] = element
            todo.extend(element.children)
        return items

    def Show(self):
        self.visible = True

    def Hide(self):
        self.visible = False

    def fire(self, element_id, event):
        handler = getattr(self.On.by_id.get(element_id, types.SimpleNamespace()), event, None)
        if handler is not None:
            handler(types.SimpleNamespace(who=element_id))

    def click(self, element_id):
        self.fire(element_id, "Clicked")


class Dispatcher:
    def __init__(self, ui, user, seconds=120):
        self.ui, self.user, self.seconds = ui, user, seconds
        self.On = Handlers()
        self.windows = []
        self.running = False
        self.timed_out = False

    def AddWindow(self, props, layout):
        window = Window(props, layout)
        self.windows.append(window)
        return window

    def RunLoop(self):
        """Fire running timers and let the user act, until ExitLoop() (or the deadline)."""
        self.running = True
        deadline = time.monotonic() + self.seconds
        while self.running:
            if time.monotonic() > deadline:
                self.timed_out = True
                break
            for timer in self.ui.timers:
                if timer.running:
                    for window in self.windows:
                        window.fire(timer.ID, "Timeout")
            self.user(self.windows[-1], self)
            time.sleep(0.05)

    def ExitLoop(self):
        self.running = False


class Bmd:
    """The `bmd` module Resolve injects: UIDispatcher(ui) with a test playing the user."""

    def __init__(self, user, seconds=120):
        self.user, self.seconds = user, seconds
        self.dispatchers = []

    def UIDispatcher(self, ui):
        dispatcher = Dispatcher(ui, self.user, self.seconds)
        self.dispatchers.append(dispatcher)
        return dispatcher


class Fusion:
    def __init__(self):
        self.UIManager = UIManager()
