import asyncio

from convlens.app.serving.transport import CoalescingTransport


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"extra {name}"


def test_writes_of_one_loop_turn_leave_in_one_send_in_order():
    async def main():
        real = FakeTransport()
        t = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        t.write(b"HTTP/1.1 200 OK\r\n\r\n")
        t.write(b"{}")
        assert real.writes == []  # nothing sent until the turn ends
        await asyncio.sleep(0)
        assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\n{}"]
        t.write(b"next")
        await asyncio.sleep(0)
        assert real.writes[-1] == b"next" and len(real.writes) == 2
        assert t.get_extra_info("peername") == "extra peername"  # the rest is the real one's

    asyncio.run(main())


def test_close_sends_what_is_pending_and_abort_drops_it():
    async def main():
        loop = asyncio.get_running_loop()
        real = FakeTransport()
        t = CoalescingTransport(real, loop)  # type: ignore[arg-type]
        t.write(b"bye")
        t.close()
        assert real.writes == [b"bye"] and real.closed
        await asyncio.sleep(0)  # the scheduled flush finds nothing left to send
        assert real.writes == [b"bye"]

        real = FakeTransport()
        t = CoalescingTransport(real, loop)  # type: ignore[arg-type]
        t.write(b"lost")
        t.abort()
        await asyncio.sleep(0)
        assert real.writes == [] and real.aborted

    asyncio.run(main())
