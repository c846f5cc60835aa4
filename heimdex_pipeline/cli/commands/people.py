"""`heimdex people`: the people faces were grouped into; name, merge and forget them."""

from __future__ import annotations

import argparse
import sys

from heimdex_pipeline.settings import Settings


def run_people(args: argparse.Namespace, settings: Settings) -> int:
    from heimdex_pipeline.catalog.people import UnknownPersonError, merge_people, name_person
    from heimdex_pipeline.cli import console
    from heimdex_pipeline.library.people import forget
    from heimdex_pipeline.search.links import store_links
    from heimdex_pipeline.search.people import list_people, person_detail
    from heimdex_pipeline.stores import open_stores

    stores = open_stores(settings)
    link = store_links(stores.objects)
    action = args.people_command or "list"
    try:
        if action == "list":
            console.show(list_people(stores, link), args.json, console.print_people)
        elif action == "show":
            console.show(person_detail(stores, args.person, link), args.json, console.print_person)
        elif action == "name":
            with stores.catalog.session() as session:
                person = name_person(session, args.person, args.name)
                print(console.printable(f"person {person.id}: {person.name}"))
        elif action == "merge":
            with stores.catalog.session() as session:
                kept = merge_people(session, args.keep, args.other)
                print(console.printable(f"person {kept.id} ({kept.name}): {kept.face_count} faces"))
        elif action == "forget":
            person_id, faces = forget(stores, args.person)
            print(f"person {person_id} forgotten: {faces} faces and their crops removed")
    except (UnknownPersonError, ValueError) as error:
        print(console.printable(f"heimdex people: {error}"), file=sys.stderr)
        return 2
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add the command's parser."""
    people = commands.add_parser("people", help="the people seen in the videos")
    people.add_argument("--json", action="store_true")
    people.set_defaults(run=run_people, people_command=None)
    actions = people.add_subparsers(dest="people_command")
    show = actions.add_parser("show", help="a person's scenes")
    show.add_argument("person", metavar="ID_OR_NAME")
    show.add_argument("--json", action="store_true")
    name = actions.add_parser("name", help="give a person a name")
    name.add_argument("person", metavar="ID_OR_NAME")
    name.add_argument("name")
    merge = actions.add_parser("merge", help="B's faces join A (one person seen as two)")
    merge.add_argument("keep", metavar="A")
    merge.add_argument("other", metavar="B")
    forget = actions.add_parser(
        "forget", help="remove a person's faces and crops everywhere (privacy)"
    )
    forget.add_argument("person", metavar="ID_OR_NAME")
