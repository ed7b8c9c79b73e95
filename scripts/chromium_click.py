#!/usr/bin/env python3
"""Opens a page in headless Chromium, clicks an element with a real mouse event, and waits for the page it leads to.

Drives Chromium over the DevTools protocol on --remote-debugging-pipe (fd 3 in, fd 4 out, NUL-terminated JSON), so
it needs only the standard library. Used by the sign-in browser tests:

  chromium_click.py --chromium /usr/bin/chromium --url URL --click '#approve' --until /oauth/google/callback

Prints one JSON object: {"url": final URL, "text": the final page's text, "status": "ok"}; exits 1 with a message on
a timeout or a missing element. Everything is bounded by --timeout (seconds).
"""
import argparse
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time


class Browser:
    def __init__(self, chromium, profile):
        commands_read, self.commands = os.pipe()
        self.replies, replies_write = os.pipe()

        def plumb():
            # Move the pipe ends out of the way first, so placing them at 3 and 4 cannot overwrite each other.
            a = fcntl.fcntl(commands_read, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(replies_write, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.process = subprocess.Popen(
            [
                chromium, "--headless", "--no-sandbox", "--disable-gpu", "--ignore-certificate-errors", "--no-first-run",
                "--remote-debugging-pipe", "--user-data-dir=" + profile, "about:blank",
            ],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(3, 4), preexec_fn=plumb,
        )
        os.close(commands_read)
        os.close(replies_write)
        self.buffer = b""
        self.next_id = 0
        self.session = None

    def send(self, method, params=None, session=True):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self.commands, json.dumps(message).encode() + b"\0")
        while True:
            reply = self.read()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def read(self):
        while b"\0" not in self.buffer:
            chunk = os.read(self.replies, 65536)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def evaluate(self, expression):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return result.get("result", {}).get("value")

    def close(self):
        try:
            self.send("Browser.close", session=False)
        except Exception:
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--chromium", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--click", required=True, help="CSS selector of the element to click")
    parser.add_argument("--until", required=True, help="substring of the URL the click should lead to")
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()

    def expired(*_):
        raise TimeoutError(f"gave up after {args.timeout} s")

    signal.signal(signal.SIGALRM, expired)
    signal.alarm(int(args.timeout))
    profile = tempfile.mkdtemp(prefix="calgate-chromium-")
    browser = Browser(args.chromium, profile)
    try:
        targets = browser.send("Target.getTargets", session=False)["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        browser.session = browser.send("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True}, session=False)["sessionId"]
        browser.send("Page.enable")
        browser.send("Page.navigate", {"url": args.url})
        selector = json.dumps(args.click)
        box = None
        while box is None:
            box = browser.evaluate(
                f"(() => {{ const e = document.readyState === 'complete' && document.querySelector({selector});"
                " if (!e) return null; const r = e.getBoundingClientRect();"
                " return {x: r.left + r.width / 2, y: r.top + r.height / 2}; })()"
            )
            if box is None:
                time.sleep(0.1)
        # A real click: press and release the left button over the element, as a person would.
        for kind in ("mousePressed", "mouseReleased"):
            browser.send("Input.dispatchMouseEvent", {"type": kind, "x": box["x"], "y": box["y"], "button": "left", "clickCount": 1})
        while True:
            state = browser.evaluate("[location.href, document.readyState, document.body ? document.body.innerText : '']")
            if state and args.until in state[0] and state[1] == "complete":
                print(json.dumps({"status": "ok", "url": state[0], "text": state[2]}))
                return 0
            time.sleep(0.1)
    except Exception as error:  # noqa: BLE001 - reported to the test
        print(json.dumps({"status": "error", "error": str(error)}))
        return 1
    finally:
        signal.alarm(0)
        browser.close()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
