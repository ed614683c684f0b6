"""The in-process hub: a listener's wake-up mark and its waits."""

from __future__ import annotations

import threading

from workhorse.storage.notify import Hub


def test_wake_ups_before_a_wait_count_once() -> None:
    listener = Hub().add(["tasks"])
    listener.wake()
    listener.wake()  # already marked: nothing more to do
    assert listener.wait(0)
    assert not listener.wait(0)  # the wait cleared the one mark


def test_a_wake_up_after_a_wait_is_not_lost() -> None:
    listener = Hub().add(["tasks"])
    listener.wake()
    assert listener.wait(0)
    listener.wake()
    assert listener.wait(0)


def test_a_wake_up_ends_a_wait_in_another_thread() -> None:
    hub = Hub()
    listener = hub.add(["tasks"], urgent=True)
    woken: list[bool] = []
    waiter = threading.Thread(target=lambda: woken.append(listener.wait(30)))
    waiter.start()
    with hub.cond:  # the waiter has entered its wait
        assert hub.cond.wait_for(lambda: hub.urgent_waiters == 1, timeout=10)
    listener.wake()
    waiter.join(10)
    assert woken == [True]
    assert hub.waiters == 0


def test_publish_wakes_the_listeners_of_its_key_alone() -> None:
    hub = Hub()
    queue = hub.add(["queue:p:orders"])
    tasks = hub.add(["tasks"])
    hub.publish("queue:p:orders")
    assert queue.wait(0)
    assert not tasks.wait(0)
