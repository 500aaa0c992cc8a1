"""Prompts: openings of movie reviews that the policy learns to continue.

There are two disjoint sets, for the same reason supervised learning keeps a validation split:

* ``TRAIN_PROMPTS`` are what GRPO samples from during training. The policy is rewarded on their continuations,
  so a high reward on them can mean "learned to be positive" or merely "memorised what pays on these 64 strings".
* ``VALIDATION_PROMPTS`` (64) are never shown to the optimiser. Their sampled continuations measure whether the
  change generalises to openings the policy was not optimised on, and they are what curves and the grader report.

Both are plain English review openings, neutral in themselves (no "The best thing about..." that would give the
sentiment away), so they work for real GPT-2 as they are. The tiny offline model (``exercise.tiny``) is
pre-trained on a corpus whose sentences start with the training prompts, the first 24 validation prompts and
openings built from the same parts (as the other 40 are), so for it they are in-distribution too: each opening
ends where an adjective, a verb phrase, a verb or a noun phrase naturally follows.
"""

from __future__ import annotations

TRAIN_PROMPTS: tuple[str, ...] = (
    # openings that ask for an adjective
    "The acting in this movie was",
    "I would describe this film as",
    "Overall, the movie was",
    "The ending felt",
    "The characters seemed",
    "To be honest, the script was",
    "The cinematography is",
    "In my opinion, this film is",
    "The first half of the movie was",
    "The dialogue sounded",
    "After watching it, I felt",
    "The pacing of the story was",
    "For a sequel, this movie was",
    "The music in the final scene was",
    "My friends thought the film was",
    "The lead actress was",
    "The costumes and sets looked",
    "Compared to the book, the movie is",
    "The second half of the film felt",
    "The jokes in this comedy were",
    "As a whole, the experience was",
    "The villain of the story was",
    "The special effects looked",
    "Most of the scenes were",
    # openings that ask for a verb phrase (the subject is given)
    "Honestly, the plot",
    "The soundtrack",
    "The lead actor",
    "The director",
    "This movie",
    "The story",
    "The special effects",
    "Every scene",
    "The supporting cast",
    "The final battle",
    "The screenplay",
    "The opening scene",
    "This film",
    "The main character",
    "The ending of the movie",
    "In the end, the film",
    # openings that ask for a verb (the viewer is the subject)
    "Honestly, I",
    "As a fan of the genre, I",
    "When the credits rolled, I",
    "From the first minute, I",
    "I have to admit that I",
    "My whole family",
    "Watching it at home, we",
    "Just last week, I",
    "After the movie, my wife and I",
    "Even on a second viewing, I",
    # openings that ask for a noun phrase
    "My favorite part of the film was",
    "What stood out to me was",
    "The thing I remember most is",
    "What I noticed first was",
    "The scene everyone talks about is",
    "What I keep coming back to is",
    "The part that stayed with me was",
    "What people will talk about is",
    # a few more of each kind, so no kind is rare
    "The camera work was",
    "The romance between the two leads felt",
    "The animation",
    "The script",
    "Last night, I",
    "The first thing you notice is",
)

VALIDATION_PROMPTS: tuple[str, ...] = (
    # The first 24, the original set: the tiny model's corpus quotes them (see CORPUS_VALIDATION_PROMPTS).
    "The performances in this film were",
    "I would say the movie was",
    "All in all, the film was",
    "The final act felt",
    "The story of this movie is",
    "The visual effects were",
    "The humor in the film was",
    "Looking back, the movie seemed",
    "The plot of this film",
    "The music",
    "The cast",
    "This picture",
    "The writing",
    "The last scene",
    "Frankly, I",
    "During the film, I",
    "My kids and I",
    "On the whole, I",
    "The scene I keep thinking about is",
    "What caught my eye was",
    "The character I remember best is",
    "The movie as a whole was",
    "The direction",
    "By the end of the film, I",
    # 40 more, so that a validation's mean moves less with the dice (its standard error shrinks by 1.6x). They
    # are built the way the tiny model's corpus builds sentence openings of its own (an aspect, a discourse
    # marker, "I"), so they are in-distribution for it without being quoted, and plain English for GPT-2.
    # ... that ask for an adjective
    "The editing was",
    "The score felt",
    "Overall, the acting was",
    "In the end, the story felt",
    "Looking back, the pacing seemed",
    "The dialogue in this film was",
    "The camera work looked",
    "Still, the script was",
    "The costumes were",
    "On the whole, the characters seemed",
    "The opening scene looked",
    "The lead actor seemed",
    "Then again, the ending was",
    "The movie was",
    "Also, the music felt",
    "All in all, the direction was",
    # ... a verb phrase
    "The editing",
    "The score",
    "Overall, the soundtrack",
    "Still, the dialogue",
    "In the end, the plot",
    "The final scene",
    "The pacing",
    "The cinematography",
    "Also, the acting",
    "The plot",
    "Then again, the story",
    "The costumes",
    # ... a verb
    "Then again, I",
    "Looking back, I",
    "Still, I",
    "All in all, I",
    "Overall, I",
    "In the end, I",
    "Also, I",
    "My brother and I",
    # ... a noun phrase
    "What I think about now is",
    "The thing I noticed was",
    "What stayed with me was",
    "The scene I remember is",
)

#: How many of the validation prompts (the first ones) the tiny model's pre-training corpus starts sentences
#: with literally. The corpus, and so the shipped model, was generated before the others were added; keeping
#: this fixed keeps ``python -m exercise.tiny.build`` reproducing the shipped model's corpus.
CORPUS_VALIDATION_PROMPTS = 24
