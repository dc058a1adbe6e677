"""OSC 1.0, the few types the protocol uses (Resolve's Python has no python-osc)."""

import struct


def _osc_string(text):
    data = text.encode("utf-8") + b"\0"
    return data + b"\0" * (-len(data) % 4)


def osc_message(address, *args):
    """One OSC message: str -> s, bool -> T/F, int -> i (int32), float -> f (float32)."""
    tags, payload = ",", b""
    for arg in args:
        if isinstance(arg, bool):
            tags += "T" if arg else "F"
        elif isinstance(arg, int):
            tags += "i"
            payload += struct.pack(">i", arg)
        elif isinstance(arg, float):
            tags += "f"
            payload += struct.pack(">f", arg)
        else:
            tags += "s"
            payload += _osc_string(str(arg))
    return _osc_string(address) + _osc_string(tags) + payload


def _read_string(data, at):
    end = data.index(b"\0", at)
    return data[at:end].decode("utf-8", "replace"), end + 1 + (-(end + 1) % 4)


def osc_parse(data):
    """A packet as [(address, [args])], bundles flattened; ValueError when it is no OSC."""
    try:
        if data.startswith(b"#bundle\0"):
            out, at = [], 16
            while at + 4 <= len(data):
                size = struct.unpack(">i", data[at:at + 4])[0]
                out.extend(osc_parse(data[at + 4:at + 4 + size]))
                at += 4 + size
            return out
        address, at = _read_string(data, 0)
        tags, at = _read_string(data, at) if at < len(data) else (",", at)
        args = []
        for tag in tags[1:]:
            if tag == "s":
                value, at = _read_string(data, at)
            elif tag == "i":
                value, at = struct.unpack(">i", data[at:at + 4])[0], at + 4
            elif tag == "f":
                value, at = struct.unpack(">f", data[at:at + 4])[0], at + 4
            elif tag == "d":
                value, at = struct.unpack(">d", data[at:at + 8])[0], at + 8
            elif tag == "h":
                value, at = struct.unpack(">q", data[at:at + 8])[0], at + 8
            elif tag in "TFN":
                value = {"T": True, "F": False, "N": None}[tag]
            else:
                raise ValueError("OSC type %r not supported" % tag)
            args.append(value)
        if not address.startswith("/"):
            raise ValueError("not an OSC address: %r" % address)
        return [(address, args)]
    except (struct.error, IndexError) as exc:
        raise ValueError("malformed OSC packet: %s" % exc)
