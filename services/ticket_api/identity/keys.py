"""Token signing keys: ``python -m services.ticket_api.identity.keys {show,ensure,rotate,retire KID}``.

Rotation: ``rotate`` adds a key that signs from now on while older keys still verify; once
the longest token lifetime has passed, ``retire`` the old key. Each change rewrites the JWKS
file that local verifiers read (services fetching the JWKS URL pick it up by themselves).
"""

from __future__ import annotations

import argparse
import json

from services.ticket_api.settings import Settings
from shared.tokens import KeyStore


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["show", "ensure", "rotate", "retire"])
    parser.add_argument("kid", nargs="?", help="the key to retire")
    args = parser.parse_args()
    settings = Settings()
    keys = KeyStore(settings.keys_dir)
    if args.action == "rotate":
        print(f"new signing key {keys.rotate()}")
    elif args.action == "ensure":  # a first key when there is none (deployments run this once)
        print(f"signing key {keys.ensure_key()}")
    elif args.action == "retire":
        if not args.kid or args.kid not in keys.kids():
            parser.error(f"name one of the active keys: {', '.join(keys.kids()) or 'none'}")
        if keys.kids() == [args.kid]:
            parser.error("refusing to retire the only key; rotate first")
        keys.retire(args.kid)
        print(f"retired {args.kid}")
    if settings.jwks_file is not None:
        keys.publish(settings.jwks_file)
    print(json.dumps({"signing": keys.kids()[-1] if keys.kids() else None, "published": keys.kids()}))


if __name__ == "__main__":
    main()
