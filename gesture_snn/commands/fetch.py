"""``gesture-snn fetch``: download the real DVS128 Gesture set into tonic's DVSGesture layout."""

from __future__ import annotations

HELP = "download the real DVS128 Gesture set (about 3 GB) into a tonic-layout data root"

DESCRIPTION = (
    "Download the two DVS128 Gesture archives that tonic.datasets.DVSGesture uses (figshare files, "
    "through the api.figshare.com download URL that works today), check their md5 sums and extract "
    "them to OUT/DVSGesture/ibmGestureTrain and ibmGestureTest. An interrupted download resumes "
    "from its .part file when the command is run again; a failed md5 check or extraction leaves no "
    "half-written file or folder behind; splits that are already complete are skipped. The archives "
    "are kept (tonic skips its own download only while they exist). See docs/data.md."
)


def add_arguments(parser) -> None:
    from gesture_snn.fetch import FIGSHARE_DOWNLOAD

    parser.add_argument(
        "--out",
        default="datasets/dvsgesture",
        metavar="DIR",
        help="data root: the set goes to DIR/DVSGesture (pass DIR to tonic or to --data)",
    )
    parser.add_argument(
        "--url-base",
        default=FIGSHARE_DOWNLOAD,
        metavar="URL",
        help="each archive is downloaded from URL<figshare file id> (a mirror, or a local server)",
    )
    parser.add_argument(
        "--split", choices=("train", "test", "both"), default="both", help="which split to fetch"
    )
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")


def run(args) -> int:
    from gesture_snn.fetch import fetch_dvsgesture

    splits = ("train", "test") if args.split == "both" else (args.split,)
    done = fetch_dvsgesture(args.out, url_base=args.url_base, splits=splits, progress=args.progress)
    for split, what in done.items():
        print(f"{split} split: {what}")
    print(
        f"DVS128 Gesture is in {args.out}/DVSGesture; load it with "
        f"tonic.datasets.DVSGesture({str(args.out)!r}) or pass --data {args.out}"
    )
    return 0
