"""Place a call whose audio is streamed to your receiver.

    export PIOPIY_APP_ID=2222222 PIOPIY_APP_TOKEN=...
    python examples/place_call.py 919999999999 918888888888 wss://your-server.example.com/stream

The stream action asks for both parties at 8 kHz and puts that format in the URL, so
the receiver knows it before the first frame. ``--api`` points the client at another
base URL (a staging endpoint, or a local test server).
"""
import argparse
import json
import os

from piopiy_fast import RestClient, StreamAction


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("to", type=int, help="the number to call, e.g. 919999999999")
    parser.add_argument("piopiy_no", type=int, help="your Piopiy number (the caller ID)")
    parser.add_argument("ws_url", help="your receiver's ws:// or wss:// URL")
    parser.add_argument("--api", default="https://rest.telecmi.com", metavar="URL",
                        help="the REST API's base URL (default https://rest.telecmi.com; "
                             "a staging endpoint, or a local test server)")
    args = parser.parse_args()

    piopiy = RestClient(int(os.environ["PIOPIY_APP_ID"]), os.environ["PIOPIY_APP_TOKEN"],
                        base_url=args.api)
    stream = StreamAction()
    stream.stream(args.ws_url, {"listen_mode": "both", "voice_quality": 8000,
                                "stream_on_answer": True}, format_in_url=True)
    # The same object's PCMO: a JSON string, after which the builder is empty.
    result = piopiy.voice.call(args.to, args.piopiy_no, stream.PCMO(), {"duration": 300})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
