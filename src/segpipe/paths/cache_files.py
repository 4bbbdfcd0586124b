"""Names of the files in the prepared folder, for the stages that read it.

Their own module, so a stage that only reads the cache (train, report) does not import
prepare, and with it every dataset adapter: a change to an adapter must not retrain.
"""
TRAIN_IMAGES, TRAIN_MASKS, TRAIN_INDEX = "train_images.npy", "train_masks.npy", "train.csv"
TEST_INDEX = "test.csv"
LAYOUT = "layout.json"  # how the images were cached (segpipe.cache.tiles.Layout)
TILES = "tiles.csv"  # tile mode: the tiles of each training image (segpipe.cache.tiles.tile_index)
