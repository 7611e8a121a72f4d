"""VM-HAN reproduction-and-analysis workbook: data, features, hypergraphs, models, training,
evaluation and analyses for multi-modal relation extraction on MNRE.

Importing the package sets offline defaults (never overriding a value the user set), so that no
model loader waits on a hub this machine cannot reach; export e.g. ``HF_HUB_OFFLINE=0`` to allow
downloads where the network is there.
"""

from vmhan_lib.offline import apply_offline_defaults

apply_offline_defaults()

__version__ = "0.1.0"
